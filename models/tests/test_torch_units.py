"""PyTorch units against the numpy reference on shared weights: outputs and gradients."""
import numpy as np
import pytest

from models import reference, registry

torch = pytest.importorskip("torch")

N_IN, N_OUT = 4, 3
INPUTS = {
    "positive": np.random.default_rng(1).uniform(0.5, 3.0, size=(6, N_IN)),
    "zeros_and_negatives": np.array([[0.0, -1.5, 2.0, 0.0], [-3.0, 0.0, 0.0, 1.0],
                                     [0.0, 0.0, 0.0, 0.0], [-0.5, -2.0, 1.0, 4.0]]),
    "large": np.array([[100.0, -250.0, 40.0, 1000.0], [-900.0, 3.0, 0.0, 60.0]]),
}


def numeric_grad(unit, params, x, key, h=1e-6):
    """Central differences of sum(reference output) in float64."""
    grad = np.zeros_like(params[key])
    for idx in np.ndindex(grad.shape):
        plus = {k: v.copy() for k, v in params.items()}
        minus = {k: v.copy() for k, v in params.items()}
        plus[key][idx] += h
        minus[key][idx] -= h
        grad[idx] = (reference.forward(unit, plus, x).sum()
                     - reference.forward(unit, minus, x).sum()) / (2 * h)
    return grad


def _float32(params):
    return {k: v.astype(np.float32).astype(np.float64) for k, v in params.items()}


@pytest.mark.parametrize("inputs", list(INPUTS))
@pytest.mark.parametrize("unit", list(reference.UNITS))
def test_forward_and_gradient_match_reference(unit, inputs):
    x = INPUTS[inputs].astype(np.float32).astype(np.float64)
    for seed in range(3):
        params = reference.init(unit, N_IN, N_OUT, np.random.default_rng(seed))
        if "b" in params:  # keep pre-activations off the ReLU kink at an all-zero input
            params["b"] = np.random.default_rng(seed).uniform(0.1, 0.3, size=N_OUT)
        params = _float32(params)
        module = registry.build(unit, "torch", N_IN, N_OUT, params=params)
        y = module(torch.tensor(x, dtype=torch.float32))
        expected = reference.forward(unit, params, x)
        scale = np.abs(expected).max() + 1e-6
        np.testing.assert_allclose(y.detach().numpy(), expected, rtol=2e-4, atol=2e-5 * scale)
        y.sum().backward()
        keys = reference.UNITS[unit].params
        wants = {key: numeric_grad(unit, params, x, key) for key in keys}
        # float32 resolves a gradient relative to the whole gradient (a saturated gate's
        # sigmoid' underflows next to a large multiplicative path)
        gscale = max(np.abs(w).max() for w in wants.values()) + 1e-6
        for key, want in wants.items():
            got = getattr(module, key).grad.numpy()
            np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-4 * gscale,
                                       err_msg=f"{unit}.{key} on {inputs}")


@pytest.mark.parametrize("unit", list(reference.UNITS))
def test_params_round_trip_and_replicas(unit):
    module = registry.build(unit, "torch", N_IN, N_OUT, seed=5, replicas=3)
    params = module.get_params()
    for key in reference.UNITS[unit].params:
        assert params[key].shape[0] == 3
    single = registry.build(unit, "torch", N_IN, N_OUT, seed=6)  # seed 6 == replica 1
    for key, value in single.get_params().items():
        np.testing.assert_allclose(value, params[key][1], rtol=1e-6, err_msg=key)
    x = torch.tensor(INPUTS["positive"], dtype=torch.float32)
    out = module(x)  # one input set shared by every replica
    np.testing.assert_allclose(out[1].detach().numpy(), single(x).detach().numpy(), rtol=1e-5)
    other = registry.build(unit, "torch", N_IN, N_OUT, seed=99, replicas=3)
    other.set_params(params)
    np.testing.assert_allclose(other(x).detach().numpy(), out.detach().numpy())


def test_nac_weight_recomputed_every_forward():
    module = registry.build("nac", "torch", 2, 1)
    x = torch.ones(1, 2)
    before = module(x).item()
    with torch.no_grad():
        module.W_hat.add_(0.5)
    assert module(x).item() != pytest.approx(before)


@pytest.mark.parametrize("unit", list(reference.UNITS))
def test_regulariser_matches_reference(unit):
    params = _float32(registry.init_params(unit, N_IN, N_OUT, [0, 1, 2]))
    reg = registry.build(unit, "torch", N_IN, N_OUT, params=params).regulariser()
    if reference.UNITS[unit].regularised:
        np.testing.assert_allclose(reg.detach().numpy(), reference.regulariser(unit, params),
                                   rtol=1e-5)
    else:
        assert reg is None


@pytest.mark.parametrize("shape", [(4, 10, 2), (64, 100, 2), (3, 7, 3), (5, 2, 1)])
def test_weight_transforms_round_each_replica_as_alone(shape):
    """A flat loop gives some of replica k's elements the scalar sigmoid and others the SIMD
    one depending on R (measured with these (64, 100, 2) weights on one thread: 20 of 64
    replicas differ from their one-seed sigmoid), which set NALU's replicas apart from
    their one-seed runs; `per_replica` makes replica k's bits independent of R."""
    from models.torch.units.base import _stored, nac_w, per_replica
    rng = np.random.default_rng(1)
    p = _stored(rng.standard_normal(shape) * 3)
    for fn in (torch.sigmoid, torch.tanh):
        together = per_replica(fn, p)
        for k in range(shape[0]):
            assert torch.equal(together[k], per_replica(fn, p[k:k + 1])[0])
            assert torch.equal(together[k], fn(p[k]))
    # a sliced (non-dense) tensor works too
    sliced = torch.as_tensor(rng.standard_normal((shape[0], 2 * shape[1], shape[2])),
                             dtype=torch.float32)[:, ::2]
    out = per_replica(torch.sigmoid, sliced)
    assert all(torch.equal(out[k], torch.sigmoid(sliced[k].contiguous())) for k in range(shape[0]))
    # the weights and gradients are autograd's, op for op
    w_hat, m_hat = (p.clone().requires_grad_() for _ in range(2))
    grad = torch.as_tensor(rng.standard_normal(shape), dtype=torch.float32)
    ours = nac_w(w_hat, m_hat)
    ours.backward(grad)
    a, b = (p.clone().requires_grad_() for _ in range(2))
    plain = torch.tanh(a) * torch.sigmoid(b)
    plain.backward(grad)
    torch.testing.assert_close(ours, plain, rtol=1e-6, atol=0)
    torch.testing.assert_close(w_hat.grad, a.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(m_hat.grad, b.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("inputs", ["shared", "own", "own-in-(R,n,B)-memory"])
@pytest.mark.parametrize("shape,batch", [((4, 10, 2), 7), ((1, 10, 2), 7), ((64, 2, 1), 7),
                                         ((64, 100, 2), 128), ((64, 2, 1), 128),
                                         ((3, 2, 4), 33)])
def test_nalu_in_one_node_is_autograd_bit_for_bit(shape, batch, inputs):
    """NALU's hand-written backward runs autograd's ops in autograd's order, and its
    products for two inputs or one output (`_mm2`, `_xgrad`) round as MKL's GEMM; also on
    an input stored as (R, n, B) memory, as the trainer stores a fixed training set."""
    from models.torch.units import make
    from models.torch.units.nalu import composed
    r, n, o = shape
    unit = make("nalu", registry.init_params("nalu", n, o, [[s, 1, 0] for s in range(r)]))
    rng = np.random.default_rng(3)
    shared = inputs == "shared"
    x = torch.as_tensor(rng.uniform(-1, 2, (batch, n) if shared else (r, batch, n)),
                        dtype=torch.float32)
    if inputs.endswith("memory"):
        x = x.transpose(1, 2).contiguous().transpose(1, 2)
    x.requires_grad_(not shared)
    dy = torch.as_tensor(rng.standard_normal((r, batch, o)), dtype=torch.float32)
    wrt = [unit.W_hat, unit.M_hat, unit.G] + ([] if shared else [x])
    results = []
    for forward in (unit, lambda x: composed(unit, x)):
        y = forward(x)
        results.append((y, torch.autograd.grad(y, wrt, dy)))
    (y1, g1), (y2, g2) = results
    assert torch.equal(y1, y2)
    assert all(torch.equal(a, b) for a, b in zip(g1, g2, strict=True))


def _twin_trainers(model, seeds, batch, common, steps):
    """Two torch trainers of one static-task group (input_size 20, op mul, lr 5e-3) on
    the same initial weights, and ``steps`` steps of that group's data."""
    import tasks
    from models.torch.train import Trainer
    from tasks.base import INIT_STREAM, ReplicaBatches
    task = tasks.get("static_arithmetic")(op="mul", input_size=20)
    layers = task.layers(registry.parse_model(model))
    init = [(u, registry.init_params(u, a, b, [[s, INIT_STREAM, j] for s in seeds]))
            for j, (u, a, b) in enumerate(layers)]
    xs, ys = ReplicaBatches(task, [task.instance(s) for s in seeds], seeds, batch,
                            common)(steps)
    return Trainer(init, lr=5e-3), Trainer(init, lr=5e-3), xs, ys, init


@pytest.mark.parametrize("model,common", [("nalu", True), ("nau-nmu", False)])
def test_replica_adam_is_torch_fused_adam_bit_for_bit(model, common):
    from models.torch.train import ReplicaAdam
    ours, theirs, xs, ys, init = _twin_trainers(model, list(range(4)), 32, common, 200)
    assert isinstance(ours.opt, ReplicaAdam)
    theirs.opt = torch.optim.Adam(theirs.net.parameters(), lr=5e-3, fused=True)
    for trainer in (ours, theirs):
        trainer.train(lams=np.zeros((200, len(init)), np.float32), **trainer.prepare(xs, ys))
    for a, b in zip(ours.net.parameters(), theirs.net.parameters(), strict=True):
        assert torch.equal(a, b)
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(ours.opt.state[a][key], theirs.opt.state[b][key])


def test_replica_adam_matches_a_gradient_in_another_layout():
    """A gradient set by hand in another memory layout than its weight's updates element
    for element (torch 2.13's own fused Adam does not: it reads both as flat memory)."""
    from models.torch.train import ReplicaAdam
    from models.torch.units.base import _stored
    rng = np.random.default_rng(0)
    start = rng.standard_normal((3, 5, 2))
    ours, theirs = torch.nn.Parameter(_stored(start)), torch.nn.Parameter(_stored(start))
    grad = torch.as_tensor(rng.standard_normal((3, 5, 2)), dtype=torch.float32)
    opt_a, opt_b = ReplicaAdam([ours], lr=0.1), torch.optim.Adam([theirs], lr=0.1, fused=True)
    for _ in range(3):
        ours.grad = grad.clone()  # contiguous, unlike the weight
        theirs.grad = torch.empty_like(theirs, memory_format=torch.preserve_format).copy_(grad)
        opt_a.step()
        opt_b.step()
    assert not ours.is_contiguous() and ours.stride() == theirs.stride()
    assert torch.equal(ours, theirs)
    assert not torch.equal(ours, _stored(start))


def test_replica_adam_counts_steps_per_parameter_when_one_gets_no_gradient():
    """The step count is one tensor while every parameter steps; once one gets no gradient
    each keeps its own, as torch.optim.Adam's (its weights, moments and counts, bit for bit)."""
    from models.torch.train import ReplicaAdam
    rng = np.random.default_rng(2)
    starts = [rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 2, 1))]
    ours = [torch.nn.Parameter(torch.as_tensor(a, dtype=torch.float32)) for a in starts]
    theirs = [torch.nn.Parameter(torch.as_tensor(a, dtype=torch.float32)) for a in starts]
    opt_a, opt_b = ReplicaAdam(ours, lr=0.1), torch.optim.Adam(theirs, lr=0.1, fused=True)
    for both in (True, True, False, False, True):
        for params in (ours, theirs):
            for k, p in enumerate(params):
                p.grad = (torch.as_tensor(np.sin(starts[k] + 1), dtype=torch.float32)
                          if both or k == 0 else None)
        opt_a.step()
        opt_b.step()
    assert [opt_a.state[p]["step"].item() for p in ours] == [5, 3]
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(opt_a.state[a][key], opt_b.state[b][key])


def test_prepared_log_inputs_are_exact_and_survive_the_next_chunk():
    """The trainer makes log(|x| + eps) in place in alternating buffers: the values of
    the plain expression, and a chunk's stay intact while the next one is prepared,
    whatever the chunk sizes (a short first chunk, a short last one)."""
    from models.torch.train import Trainer
    from models.torch.units import EPS
    init = [(u, registry.init_params(u, a, b, [[s, 1, j] for s in range(3)]))
            for j, (u, a, b) in enumerate([("nalu", 5, 2), ("nalu", 2, 1)])]
    trainer = Trainer(init, lr=1e-3)
    rng = np.random.default_rng(0)
    before = None
    for steps in (2, 7, 7, 2, 7):
        xs = rng.uniform(-3, 3, (steps, 3, 4, 5)).astype(np.float32)
        xs[0, 0, 0, :2] = 0.0
        chunk = trainer.prepare(xs, np.zeros((steps, 3, 4, 1), np.float32))
        expected = torch.log(torch.as_tensor(xs).abs() + EPS)
        assert torch.equal(chunk["log_xs"], expected)
        if before is not None:
            assert torch.equal(before[0]["log_xs"], before[1])  # untouched by this one
        before = (chunk, expected)


@pytest.mark.parametrize("model,common,batch", [("nalu", True, 128), ("nalu", False, 33),
                                                ("nau-nmu", False, 33), ("nac-nacmul", False, 7)])
def test_mse_gradient_without_the_loss_nodes_is_autograd_bit_for_bit(model, common, batch):
    """With no regulariser active the trainer backpropagates (pred - y) * 2 float32(1/N)
    itself, and for nalu calls each layer's node by hand (`Trainer._step_by_hand`); 100
    steps end on autograd's weights of the summed per-replica MSE, bit for bit."""
    ours, theirs, xs, ys, init = _twin_trainers(model, list(range(3)), batch, common, 100)
    assert ours._by_hand == (model == "nalu")
    ours.train(lams=np.zeros((100, len(init)), np.float32), **ours.prepare(xs, ys))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the trainer trains: MKL's GEMMs round by thread count
    try:
        for x, y in zip(torch.as_tensor(xs), torch.as_tensor(ys)):
            theirs.opt.zero_grad()
            ((theirs.net(x) - y) ** 2).mean(dim=(-2, -1)).sum().backward()
            theirs.opt.step()
            theirs.net.project_()
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(ours.net.parameters(), theirs.net.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(next(ours.net.parameters()),
                           torch.as_tensor(init[0][1][next(iter(init[0][1]))], dtype=torch.float32))
