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


BIG = 50.0  # tanh(50) * sigmoid(50) == 1 in float64: a NAC weight of exactly 1


def _sep(w_a, w_m, **gate):
    """nalu_sep / inalu parameters whose NAC weights are w_a and w_m exactly (+-1 or 0)."""
    def hats(w):
        w = np.asarray(w, dtype=float)
        return np.sign(w) * BIG, np.where(w == 0, -BIG, BIG)
    (wa, ma), (wm, mm) = hats(w_a), hats(w_m)
    return {"W_hat_a": wa, "M_hat_a": ma, "W_hat_m": wm, "M_hat_m": mm, **gate}


def test_inalu_recovers_the_sign_of_a_product():
    p = _sep([[0.0], [0.0]], [[1.0], [1.0]], g=np.array([-BIG]))  # gate: all multiplicative
    x = np.array([[3.0, -4.0], [-2.0, -5.0], [0.0, 7.0]])
    np.testing.assert_allclose(reference.forward("inalu", p, x), [[-12.0], [10.0], [0.0]],
                               atol=1e-6)


def test_inalu_division_and_gate_to_the_additive_path():
    div = _sep([[0.0], [0.0]], [[1.0], [-1.0]], g=np.array([-BIG]))
    x = np.array([[6.0, -3.0]])
    np.testing.assert_allclose(reference.forward("inalu", div, x), [[-2.0]], rtol=1e-6)
    add = _sep([[1.0], [-1.0]], [[1.0], [1.0]], g=np.array([BIG]))
    np.testing.assert_allclose(reference.forward("inalu", add, x), [[9.0]], rtol=1e-6)


def test_inalu_clips_the_log_space_sum_at_omega():
    p = _sep([[0.0], [0.0]], [[1.0], [1.0]], g=np.array([-BIG]))
    x = np.array([[1e6, 1e6]])  # log-space sum 27.6 > omega = 20
    out = reference.forward("inalu", p, x)
    np.testing.assert_allclose(out, [[np.exp(reference.INALU_OMEGA)]], rtol=1e-9)


def test_inalu_regulariser_pushes_parameters_beyond_t():
    p = reference.init("inalu", 2, 1, np.random.default_rng(0))
    saturated = {k: np.full_like(v, 25.0) for k, v in p.items()}
    assert reference.regulariser("inalu", saturated) == 0.0
    zeros = {k: np.zeros_like(v) for k, v in p.items()}
    assert reference.regulariser("inalu", zeros) == pytest.approx(5 * reference.INALU_T)


def test_npu_multiplies_and_divides_signed_inputs():
    x = np.array([[3.0, -4.0], [-2.0, -5.0], [0.5, 8.0]])
    mul = {"W_re": np.array([[1.0], [1.0]]), "W_im": np.zeros((2, 1)), "g": np.ones(2)}
    np.testing.assert_allclose(reference.forward("npu", mul, x), [[-12.0], [10.0], [4.0]],
                               rtol=1e-6)
    div = {"W_re": np.array([[1.0], [-1.0]]), "g": np.ones(2)}
    np.testing.assert_allclose(reference.forward("realnpu", div, x),
                               [[-0.75], [0.4], [0.0625]], rtol=1e-6)


def test_npu_gate_makes_an_input_irrelevant():
    p = {"W_re": np.array([[1.0], [1.0]]), "W_im": np.zeros((2, 1)), "g": np.array([1.0, 0.0])}
    x = np.array([[3.0, -400.0], [-2.0, 0.0]])
    np.testing.assert_allclose(reference.forward("npu", p, x), [[3.0], [-2.0]], rtol=1e-6)
    p["g"] = np.array([1.0, 7.0])  # clipped to 1 in the forward pass
    np.testing.assert_allclose(reference.forward("npu", p, x[:1]), [[-1200.0]], rtol=1e-6)


def test_npu_imaginary_weight_is_the_complex_power():
    rng = np.random.default_rng(3)
    p = {"W_re": rng.normal(size=(2, 1)), "W_im": rng.normal(size=(2, 1)), "g": np.ones(2)}
    x = np.array([[1.5, -0.7], [-2.0, 3.0]])
    z = x.astype(complex) + reference.NPU_EPS * np.sign(x)  # |x| + eps, same angle
    want = np.prod(z[:, :, None] ** (p["W_re"] + 1j * p["W_im"])[None], axis=1).real
    np.testing.assert_allclose(reference.forward("npu", p, x), want, rtol=1e-9)


def test_npu_regulariser_is_the_l1_norm():
    p = {"W_re": np.array([[1.0, -2.0]]), "W_im": np.array([[0.5, 0.0]]), "g": np.array([0.5])}
    assert reference.regulariser("npu", p) == pytest.approx(4.0)


def test_gnalu_uses_the_golden_ratio_base():
    phi = (1 + 5 ** 0.5) / 2
    p = {"W_hat": np.array([[0.7]]), "M_hat": np.array([[-0.3]]), "G": np.array([[0.4]])}
    golden_tanh = (phi ** 1.4 - 1) / (phi ** 1.4 + 1)
    golden_sigmoid = 1 / (1 + phi ** 0.3)
    w = golden_tanh * golden_sigmoid
    np.testing.assert_allclose(reference.gnalu_weight(p), [[w]])
    x = np.array([[2.5]])
    g = 1 / (1 + phi ** (-0.4 * 2.5))
    want = g * 2.5 * w + (1 - g) * phi ** (w * np.log(2.5 + reference.EPS) / np.log(phi))
    np.testing.assert_allclose(reference.forward("gnalu", p, x), [[want]], rtol=1e-12)


def test_nalu_sep_paths_have_their_own_weights():
    add_w, mul_w = [[1.0], [1.0]], [[1.0], [-1.0]]
    x = np.array([[6.0, 3.0]])
    add = reference.forward("nalu_sep", _sep(add_w, mul_w, G=np.full((2, 1), BIG)), x)
    mul = reference.forward("nalu_sep", _sep(add_w, mul_w, G=np.full((2, 1), -BIG)), x)
    np.testing.assert_allclose(add, [[9.0]], rtol=1e-6)
    np.testing.assert_allclose(mul, [[2.0]], rtol=1e-6)  # 6 / 3: the paths differ
