"""The numpy spec itself, on hand-worked cases."""
import numpy as np
import pytest

from models import reference


def test_nac_weight_is_tanh_times_sigmoid():
    p = {"W_hat": np.array([[0.3, -2.0]]), "M_hat": np.array([[1.0, 0.5]])}
    expected = np.tanh(p["W_hat"]) / (1 + np.exp(-p["M_hat"]))
    np.testing.assert_allclose(reference.nac_weight(p), expected)
    x = np.array([[2.0]])
    np.testing.assert_allclose(reference.forward("nac", p, x), 2.0 * expected)


def test_nau_with_unit_weights_adds_and_subtracts():
    p = {"W": np.array([[1.0, 1.0], [1.0, -1.0], [0.0, 3.0]])}  # 3.0 is clipped to 1
    x = np.array([[5.0, 2.0, 1.0]])
    np.testing.assert_allclose(reference.forward("nau", p, x), [[7.0, 4.0]])


def test_nmu_multiplies_selected_inputs():
    p = {"W": np.array([[1.0], [1.0], [0.0]])}
    x = np.array([[3.0, -4.0, 100.0], [0.0, 5.0, 7.0]])
    np.testing.assert_allclose(reference.forward("nmu", p, x), [[-12.0], [0.0]])


def test_nacmul_multiplies_magnitudes_with_eps():
    big = 50.0  # tanh(50) * sigmoid(50) == 1 in float64
    p = {"W_hat": np.full((2, 1), big), "M_hat": np.full((2, 1), big)}
    x = np.array([[3.0, 4.0], [0.0, 2.0]])
    out = reference.forward("nacmul", p, x)
    np.testing.assert_allclose(out, [[12.0], [reference.EPS * 2.0]], rtol=1e-6)


def test_nalu_gate_switches_between_paths():
    big = 50.0
    base = {"W_hat": np.full((2, 1), big), "M_hat": np.full((2, 1), big)}
    x = np.array([[3.0, 4.0]])
    add = reference.forward("nalu", {**base, "G": np.full((2, 1), big)}, x)
    mul = reference.forward("nalu", {**base, "G": np.full((2, 1), -big)}, x)
    np.testing.assert_allclose(add, [[7.0]], rtol=1e-6)
    np.testing.assert_allclose(mul, [[12.0]], rtol=1e-6)


def test_relu6_and_linear_bias():
    p = {"W": np.array([[2.0]]), "b": np.array([1.0])}
    x = np.array([[-3.0], [1.0], [10.0]])
    np.testing.assert_allclose(reference.forward("linear", p, x), [[-5.0], [3.0], [21.0]])
    np.testing.assert_allclose(reference.forward("relu6", p, x), [[0.0], [3.0], [6.0]])


@pytest.mark.parametrize("unit", list(reference.UNITS))
def test_replica_axis_equals_separate_replicas(unit):
    rng = np.random.default_rng(0)
    per = [reference.init(unit, 4, 3, np.random.default_rng(s)) for s in range(3)]
    stacked = {k: np.stack([p[k] for p in per]) for k in per[0]}
    x = rng.uniform(-2, 2, size=(3, 5, 4))
    out = reference.forward(unit, stacked, x)
    for r in range(3):
        np.testing.assert_allclose(out[r], reference.forward(unit, per[r], x[r]))
    shared = reference.forward(unit, stacked, x[0])  # one input set for every replica
    for r in range(3):
        np.testing.assert_allclose(shared[r], reference.forward(unit, per[r], x[0]))


def test_sparsity_error_and_regulariser():
    w = {"W": np.array([[1.0, 0.0], [0.2, -0.9]])}
    assert reference.sparsity_error("nau", w) == pytest.approx(0.2)
    assert reference.regulariser("nau", w) == pytest.approx((0 + 0 + 0.2 + 0.1) / 4)
    assert reference.regulariser("linear", {"W": w["W"], "b": np.zeros(2)}) == 0.0
