"""Recurrent cells in both frameworks against the numpy reference on shared weights:
the hidden state over a few steps, gradients, replicas, and the registry's refusals."""
import numpy as np
import pytest

from models import reference, registry

FRAMEWORKS = [pytest.param(fw, marks=pytest.mark.skipif(
    registry.framework_missing(fw) is not None, reason=f"{fw} not installed"))
    for fw in registry.FRAMEWORKS]
N_IN, HIDDEN, STEPS = 3, 2, 3
INPUTS = {  # (B, T, n_in) sequences
    "positive": np.random.default_rng(1).uniform(0.5, 2.0, size=(4, STEPS, N_IN)),
    "zeros_and_negatives": np.array([[[0.0, -1.5, 2.0], [-3.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
                                     [[0.0, 0.0, 0.0], [-0.5, -2.0, 1.0], [0.0, 1.0, -1.0]]]),
    "large": np.array([[[100.0, -250.0, 40.0], [-90.0, 3.0, 0.0], [60.0, 500.0, -7.0]],
                       [[300.0, 20.0, 0.0], [1.0, 2.0, 3.0], [-400.0, 0.0, 80.0]]]),
}
CELLS = list(reference.CELLS)
# (cell, init options): every cell as registered, and MC-LSTM with its auxiliary input
# (the end-of-sequence marker of `reference.end_marker`, appended to the inputs)
CASES = [pytest.param(c, {}, id=c) for c in CELLS] + [
    pytest.param("mclstm", {"aux": 1}, id="mclstm-aux")]


def _float32(params):
    return {k: np.asarray(v, np.float32).astype(np.float64) for k, v in params.items()}


class Adapter:
    """The framework behind a tiny common interface: run a cell over a sequence."""

    def __init__(self, fw):
        self.fw = fw
        self.module = registry.framework_module(fw, "cells")
        if fw == "torch":
            import torch
            self.lib = torch
        else:
            import tensorflow as tf
            self.lib = tf

    def tensor(self, a):
        if self.fw == "torch":
            return self.lib.tensor(np.asarray(a), dtype=self.lib.float32)
        return self.lib.constant(np.asarray(a, np.float32))

    def states(self, cell, xs, replicas=None):
        """Every h_t of the cell over xs (..., B, T, n_in), as numpy arrays."""
        return [h.detach().numpy() if self.fw == "torch" else h.numpy()
                for h in self.run(cell, xs, replicas)]

    def run(self, cell, xs, replicas=None):
        """Every h_t (framework tensors) of the cell over xs (..., B, T, n_in)."""
        state = cell.zero_state(xs.shape[-3], replicas)
        out = []
        for t in range(xs.shape[-2]):
            h, state = cell(self.tensor(xs[..., t, :]), state)
            out.append(h)
        return out

    def grads(self, cell, xs):
        """d sum(h_T) / d each parameter, keyed by the reference's names."""
        if self.fw == "torch":
            self.run(cell, xs)[-1].sum().backward()
            return {k: cell._param(k).grad.numpy() for k in cell.spec.params}
        with self.lib.GradientTape() as tape:
            total = self.lib.reduce_sum(self.run(cell, xs)[-1])
        variables = [cell._param(k) for k in cell.spec.params]
        return {k: g.numpy() for k, g in zip(cell.spec.params, tape.gradient(total, variables))}


def reference_states(cell, params, xs):
    state = reference.cell_zero_state(cell, params, xs.shape[-3])
    out = []
    for t in range(xs.shape[-2]):
        h, state = reference.cell_step(cell, params, xs[..., t, :], state)
        out.append(h)
    return out


def numeric_grad(cell, params, xs, key, h=1e-6):
    grad = np.zeros_like(params[key])
    for idx in np.ndindex(grad.shape):
        plus = {k: v.copy() for k, v in params.items()}
        minus = {k: v.copy() for k, v in params.items()}
        plus[key][idx] += h
        minus[key][idx] -= h
        grad[idx] = (reference.cell_run(cell, plus, xs).sum()
                     - reference.cell_run(cell, minus, xs).sum()) / (2 * h)
    return grad


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("inputs", list(INPUTS))
@pytest.mark.parametrize("cell,options", CASES)
def test_states_and_gradients_match_reference(framework, cell, options, inputs):
    fw = Adapter(framework)
    xs = INPUTS[inputs].astype(np.float32).astype(np.float64)
    if options.get("aux"):
        xs = reference.end_marker(xs, options["aux"])
    for seed in range(2):
        params = _float32(reference.cell_init(cell, N_IN, HIDDEN, np.random.default_rng(seed),
                                              **options))
        want = reference_states(cell, params, xs)
        module = fw.module.make(cell, params)
        got = fw.states(module, xs)
        assert len(got) == STEPS
        for t, (g, w) in enumerate(zip(got, want)):
            # float32 sigmoids underflow to 0 where float64 gives 1e-8: an absolute floor
            scale = np.abs(w).max() + 0.05
            np.testing.assert_allclose(np.asarray(g), w, rtol=2e-4, atol=2e-5 * scale,
                                       err_msg=f"{cell} h_{t} on {inputs}")
        module = fw.module.make(cell, params)
        grads = fw.grads(module, xs)
        wants = {k: numeric_grad(cell, params, xs, k) for k in reference.CELLS[cell].params}
        gscale = max(np.abs(w).max(initial=0.0) for w in wants.values()) + 0.05
        for key, w in wants.items():
            np.testing.assert_allclose(grads[key], w, rtol=2e-3, atol=2e-4 * gscale,
                                       err_msg=f"{cell}.{key} grad on {inputs}")


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("cell", CELLS)
def test_replica_equals_one_seed_cell_and_params_round_trip(framework, cell):
    fw = Adapter(framework)
    xs = INPUTS["positive"]
    stacked = registry.init_cell_params(cell, N_IN, HIDDEN, [10, 11, 12])
    single = registry.init_cell_params(cell, N_IN, HIDDEN, [11])
    for key in reference.CELLS[cell].params:
        np.testing.assert_array_equal(stacked[key][1], single[key][0])
    many = fw.module.make(cell, stacked)
    one = fw.module.make(cell, {k: v[0] for k, v in single.items()})
    shared = fw.states(many, xs)  # one input set shared by every replica
    own = fw.states(many, np.stack([xs + r for r in range(3)]))  # per-replica inputs
    alone = fw.states(one, xs)
    alone_own = fw.states(one, xs + 1)
    for t in range(STEPS):
        np.testing.assert_allclose(np.asarray(shared[t])[1], np.asarray(alone[t]), rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(np.asarray(own[t])[1], np.asarray(alone_own[t]), rtol=1e-5,
                                   atol=1e-6)
    assert not np.allclose(np.asarray(shared[-1])[0], np.asarray(shared[-1])[1])
    # round trip: a fresh cell given these parameters computes the same states
    params = many.get_params()
    assert set(params) == set(reference.CELLS[cell].params)
    other = fw.module.make(cell, registry.init_cell_params(cell, N_IN, HIDDEN, [7, 8, 9]))
    other.set_params(params)
    np.testing.assert_array_equal(np.asarray(fw.states(other, xs)[-1]), np.asarray(shared[-1]))
    reg = many.regulariser()
    if reference.CELLS[cell].unit and reference.UNITS[reference.CELLS[cell].unit].regularised:
        want = reference.cell_regulariser(cell, _float32(params))
        reg = reg.detach().numpy() if framework == "torch" else reg.numpy()
        np.testing.assert_allclose(reg, want, rtol=1e-5)
    else:
        assert reg is None


def test_reference_cells_compute_what_they_claim():
    """Hand-set weights: an NAU cell with W = [selection; identity] is a running sum."""
    n_in, hidden = 4, 2
    w = np.zeros((n_in + hidden, hidden))
    w[0:2, 0] = 1.0  # a sums x0 + x1
    w[1:3, 1] = 1.0  # b sums x1 + x2
    w[n_in:, :] = np.eye(hidden)
    xs = np.random.default_rng(0).uniform(-2, 2, size=(5, 7, n_in))
    h = reference.cell_run("nau", {"W": w}, xs)
    np.testing.assert_allclose(h, np.stack([xs[..., 0:2].sum((1, 2)),
                                            xs[..., 1:3].sum((1, 2))], -1))
    # an RNN-ReLU cell with U = I and a positive input path is the same running sum
    params = {"W": w[:n_in], "U": np.eye(hidden), "b": np.zeros(hidden)}
    pos = np.abs(xs)
    np.testing.assert_allclose(reference.cell_run("rnn_relu", params, pos),
                               reference.cell_run("nau", {"W": w}, pos))
    # init: PyTorch's U(-1/sqrt(H), 1/sqrt(H)) for the classic cells
    p = reference.cell_init("lstm", 10, 16, np.random.default_rng(0))
    assert p["W"].shape == (10, 64) and p["U"].shape == (16, 64) and p["b"].shape == (64,)
    assert np.abs(p["U"]).max() <= 0.25
    assert reference.cell_init("nau", 10, 2, np.random.default_rng(0))["W"].shape == (12, 2)


def test_registry_refuses_feed_forward_units_and_unknown_cells():
    assert registry.check_cell("lstm") == "lstm"
    with pytest.raises(registry.UnknownName, match="'relu6' is feed-forward only.*known cells:"
                       ".*lstm"):
        registry.check_cell("relu6")
    with pytest.raises(registry.UnknownName, match="unknown cell 'lstm2'; known cells: lstm"):
        registry.check_cell("lstm2")
    assert set(registry.CELL_NAMES) >= {"lstm", "gru", "rnn_tanh", "rnn_relu", "nac", "nalu",
                                        "nau", "nmu"}


def _mclstm_params(aux):
    """Hand-set MC-LSTM weights: inputs 0, 1 go to cell 0, inputs 1, 2 to cell 1 (input 1
    split evenly), the state stays in its cell, and with the end-of-sequence marker the
    output gate is shut (o = s(-30)) during the sequence and open (o = s(30)) at its end."""
    big = 30.0
    j = np.array([[big, -big], [0.0, 0.0], [-big, big]])
    return {"r": np.eye(2) * big, "J": j, "W_o": np.full((aux, 2), -big),
            "b_o": np.zeros(2)}


def test_mclstm_reference_conserves_mass_and_accumulates():
    xs = np.random.default_rng(0).uniform(1.0, 2.0, size=(5, 7, 3))
    # mass conservation at every step, for any weights: sum(h + c) = sum(x_t) + sum(c_prev)
    params = reference.cell_init("mclstm", 3, 4, np.random.default_rng(1), aux=1)
    params = {k: v + np.random.default_rng(2).normal(size=v.shape) for k, v in params.items()}
    marked = reference.end_marker(xs)
    state = reference.cell_zero_state("mclstm", params, 5)
    for t in range(7):
        h, new = reference.cell_step("mclstm", params, marked[:, t], state)
        np.testing.assert_allclose((h + new[1]).sum(-1), xs[:, t].sum(-1) + state[1].sum(-1))
        assert np.all(h >= 0) and np.all(new[1] >= 0)  # positive mass stays positive
        state = new
    # the hand-set weights with the marker: h_T is the two subset sums over the sequence
    want = np.stack([xs[..., 0].sum(1) + xs[..., 1].sum(1) / 2,
                     xs[..., 2].sum(1) + xs[..., 1].sum(1) / 2], -1)
    np.testing.assert_allclose(reference.cell_run("mclstm", _mclstm_params(1), marked), want,
                               rtol=1e-10)
    # without the marker (aux = 0) the gate is constant: o = s(0) = 1/2 leaks half each step
    leaky = reference.cell_run("mclstm", _mclstm_params(0), xs)
    assert np.all(leaky < 0.6 * want)


def test_mclstm_init_and_options():
    """The fork's init: J with orthonormal columns, R the identity, W_o a unit vector (one
    auxiliary input, hidden 2), b_o = -3; options are MC-LSTM's only."""
    p = reference.cell_init("mclstm", 10, 2, np.random.default_rng(0), aux=1)
    assert {k: v.shape for k, v in p.items()} == {"r": (2, 2), "J": (10, 2), "W_o": (1, 2),
                                                   "b_o": (2,)}
    np.testing.assert_allclose(p["J"].T @ p["J"], np.eye(2), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(p["W_o"]), 1.0)
    np.testing.assert_array_equal(p["r"], np.eye(2))
    np.testing.assert_array_equal(p["b_o"], [-3.0, -3.0])
    assert reference.cell_init("mclstm", 10, 2, np.random.default_rng(0))["W_o"].shape == (0, 2)
    stacked = registry.init_cell_params("mclstm", 10, 2, [1, 2], aux=1)
    assert stacked["W_o"].shape == (2, 1, 2)
    with pytest.raises(ValueError, match="takes no option aux"):
        reference.cell_init("lstm", 3, 2, np.random.default_rng(0), aux=1)
    with pytest.raises(ValueError, match="aux must be a non-negative integer"):
        reference.cell_init("mclstm", 3, 2, np.random.default_rng(0), aux=-1)
    marked = reference.end_marker(np.zeros((2, 4, 3)))
    np.testing.assert_array_equal(marked[0, :, 3], [1, 1, 1, -1])


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_mclstm_inputs_append_the_end_marker(framework):
    """`Cell.inputs` in the sequence loops: the marker of `reference.end_marker` for
    MC-LSTM with aux = 1; x unchanged for every other cell (and MC-LSTM with aux = 0)."""
    fw = Adapter(framework)
    xs = INPUTS["positive"].astype(np.float32)
    marked = reference.end_marker(xs)
    cell = fw.module.make("mclstm", registry.init_cell_params("mclstm", N_IN, HIDDEN, [0],
                                                              aux=1))
    for t in range(STEPS):
        got = cell.inputs(fw.tensor(xs[:, t]), t == STEPS - 1)
        np.testing.assert_array_equal(np.asarray(got), marked[:, t])
    if framework == "tf":  # the tf evaluation loop passes a boolean tensor
        for last in (True, False):
            got = cell.inputs(fw.tensor(xs[:, 0]), fw.lib.constant(last))
            np.testing.assert_array_equal(np.asarray(got)[:, :N_IN], xs[:, 0])
            np.testing.assert_array_equal(np.asarray(got)[:, N_IN], -1.0 if last else 1.0)
    for name in ("lstm", "nau"):
        other = fw.module.make(name, registry.init_cell_params(name, N_IN, HIDDEN, [0]))
        np.testing.assert_array_equal(np.asarray(other.inputs(fw.tensor(xs[:, 0]), True)),
                                      xs[:, 0])
