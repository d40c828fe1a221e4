"""The explainer's training (`models.explainer`): its initialisation, its half-sum loss in
both trainers, its fixed batches, and a short run whose records agree across frameworks."""
import numpy as np
import pytest
from scipy import stats

from models import explainer, reference
from tasks.static_arithmetic import EXPLAINER_PARAMS, StaticArithmetic


def test_init_is_the_truncated_normal_with_sd_002():
    p = explainer.init("nalu", 10, 2, np.random.default_rng(0))
    assert set(p) == {"W_hat", "M_hat", "G"} and all(v.shape == (10, 2) for v in p.values())
    x = explainer.truncated_normal(np.random.default_rng(1), 0.02, 200_000)
    assert np.abs(x).max() <= 0.04  # cut at two standard deviations
    law = stats.truncnorm(-2.0, 2.0, scale=0.02)
    assert x.std() == pytest.approx(law.std(), rel=0.01)  # 0.0176, not 0.02
    assert abs(x.mean()) < 1e-4
    assert stats.kstest(x, law.cdf).pvalue > 1e-3


def _problem(replicas=2, n=32):
    rng = np.random.default_rng(7)
    layers = [("nalu", reference.init("nalu", 10, 2, rng)), ("nalu", reference.init(
        "nalu", 2, 1, rng))]
    layers = [(u, {k: np.stack([v * (1 + 0.1 * r) for r in range(replicas)])
                   for k, v in p.items()}) for u, p in layers]
    x = rng.uniform(0.5, 3.0, size=(replicas, n, 10))
    y = (x[..., :4].sum(-1) + x[..., 4:].sum(-1))[..., None]
    return layers, x, y


def _half_sum(layers, x, y):
    h = x
    for unit, p in layers:
        h = reference.forward(unit, p, h)
    return 0.5 * ((h - y) ** 2).sum()


def _reference_grads(layers, x, y, h=1e-6):
    """d/dtheta of tf.nn.l2_loss summed over replicas, by central differences in float64."""
    out = []
    for j, (_, p) in enumerate(layers):
        grads = {}
        for k, v in p.items():
            g = np.zeros_like(v)
            for idx in np.ndindex(v.shape):
                hi = [(u, {kk: vv.copy() for kk, vv in q.items()}) for u, q in layers]
                lo = [(u, {kk: vv.copy() for kk, vv in q.items()}) for u, q in layers]
                hi[j][1][k][idx] += h
                lo[j][1][k][idx] -= h
                g[idx] = (_half_sum(hi, x, y) - _half_sum(lo, x, y)) / (2 * h)
            grads[k] = g
        out.append(grads)
    return out


def _check(got, want):
    for g_layer, w_layer in zip(got, want):
        for k in w_layer:
            scale = np.abs(w_layer[k]).max()
            np.testing.assert_allclose(g_layer[k], w_layer[k], rtol=2e-3, atol=2e-4 * scale,
                                       err_msg=k)


def test_torch_loss_scale_gives_the_half_sum_gradient():
    import torch

    from models.torch.train import Trainer

    layers, x, y = _problem()
    n = x.shape[1]
    trainer = Trainer(layers, lr=0.1, loss_scale=explainer.loss_scale(n, 1))
    assert trainer.grad_scale(torch.zeros(2, n, 1)) == 1.0  # d l2_loss / d pred = pred - y
    trainer.opt.step = lambda: None  # keep the gradients, leave the weights
    trainer.train(x[None].astype(np.float32), y[None].astype(np.float32),
                  np.zeros((1, 2), np.float32))
    got = [{k: getattr(u, k).grad.numpy() for k in u.spec.params} for u in trainer.net.units]
    _check(got, _reference_grads(layers, x, y))


def test_tf_loss_scale_gives_the_half_sum_gradient():
    from models.tf.train import Trainer
    from models.tf.units import tf

    layers, x, y = _problem()
    trainer = Trainer(layers, lr=0.1, jit_compile=False,
                      loss_scale=explainer.loss_scale(x.shape[1], 1))
    grads = trainer._mse_grads(lambda: trainer.net.call(tf.constant(x, tf.float32)),
                               tf.constant(y, tf.float32), tf.zeros((2, 2)))
    variables = trainer.net.trainable_variables
    got = [{k: grads[next(i for i, v in enumerate(variables) if v is getattr(u, k))].numpy()
            for k in u.spec.params} for u in trainer.net.units]
    _check(got, _reference_grads(layers, x, y))


def test_fixed_batches_are_one_set_for_every_step():
    task = StaticArithmetic(op="mul", protocol="explainer", **EXPLAINER_PARAMS)
    insts = [task.instance(s) for s in (0, 1)]
    batches = explainer.FixedBatches([task, task], insts, [0, 1], 100)
    xs, ys = batches(5)
    assert xs.shape == (5, 2, 100, 10) and ys.shape == (5, 2, 100, 1)
    assert xs.strides[0] == 0 and not xs.flags.writeable  # a view: nothing copied per step
    for r, s in enumerate((0, 1)):
        x, y = task.train_set(insts[r], s, 100)
        np.testing.assert_array_equal(xs[4, r], x)
        np.testing.assert_array_equal(ys[4, r], y)
    assert batches.rngs == []

    from models.torch.train import Trainer
    from models.torch.units import EPS

    layers = [("nalu", explainer.init("nalu", 10, 2, np.random.default_rng(0))),
              ("nalu", explainer.init("nalu", 2, 1, np.random.default_rng(1)))]
    layers = [(u, {k: np.stack([v, v]) for k, v in p.items()}) for u, p in layers]
    chunk = Trainer(layers, lr=0.1).prepare(xs, ys)
    assert tuple(chunk["xs"].shape) == xs.shape and chunk["xs"].stride(0) == 0
    np.testing.assert_array_equal(chunk["xs"][3].numpy(), xs[3])
    np.testing.assert_allclose(chunk["log_xs"][3].numpy(), np.log(np.abs(xs[3]) + EPS),
                               rtol=1e-6)
    for key in ("xs", "log_xs"):  # each replica's set stored as (n, B) memory
        assert chunk[key][3].transpose(-1, -2).is_contiguous()


def test_torch_trains_a_fixed_set_as_autograd_and_as_each_replica_alone():
    """The torch trainer's steps on a fixed set (stored as (R, n, B) memory, by hand) end
    on autograd's weights for the half-sum loss on that memory, and a replica trained
    alone ends on its weights in the program, bit for bit."""
    import torch

    from models.torch.train import Trainer

    task = StaticArithmetic(op="mul", protocol="explainer", **EXPLAINER_PARAMS)
    seeds, steps, batch = [0, 1, 2], 8, 50
    insts = [task.instance(s) for s in seeds]
    xs, ys = explainer.FixedBatches([task] * 3, insts, seeds, batch)(steps)
    layers = [(u, {k: np.stack([explainer.init(u, a, b, np.random.default_rng(10 * j + s))[k]
                                for s in seeds]) for k in ("W_hat", "M_hat", "G")})
              for j, (u, a, b) in enumerate([("nalu", 10, 2), ("nalu", 2, 1)])]
    scale = explainer.loss_scale(batch, 1)
    lams = np.zeros((steps, 2), np.float32)
    program = Trainer(layers, lr=0.1, loss_scale=scale)
    assert program._by_hand
    program.train(lams=lams, **program.prepare(xs, ys))

    theirs = Trainer(layers, lr=0.1, loss_scale=scale)
    x = torch.as_tensor(np.array(xs[0])).transpose(1, 2).contiguous().transpose(1, 2)
    y = torch.as_tensor(np.array(ys[0]))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the trainer trains: MKL's GEMMs round by thread count
    try:
        for _ in range(steps):
            theirs.opt.zero_grad()
            (((theirs.net(x) - y) ** 2).mean(dim=(-2, -1)) * scale).sum().backward()
            theirs.opt.step()
            theirs.net.project_()
    finally:
        torch.set_num_threads(threads)
    trained = program.params()
    for mine, expected in zip(trained, theirs.params(), strict=True):
        for key in mine:
            np.testing.assert_array_equal(mine[key], expected[key])

    alone = Trainer([(u, {k: v[1:2] for k, v in p.items()}) for u, p in layers], lr=0.1,
                    loss_scale=scale)
    alone.train(lams=lams, **alone.prepare(xs[:, 1:2], ys[:, 1:2]))
    for mine, one in zip(trained, alone.params(), strict=True):
        for key in mine:
            np.testing.assert_array_equal(mine[key][1:2], one[key])
    assert not np.allclose(trained[0]["W_hat"], layers[0][1]["W_hat"])  # it trained


def test_tf_trains_a_fixed_set_once_as_on_its_copies():
    """The tf trainer stages one set, not a copy per step (100 seeds' chunk of 1,000 steps
    would be 37 GiB), and trains on it exactly as on the materialised chunk."""
    pytest.importorskip("tensorflow")
    from models.tf.train import Trainer

    task = StaticArithmetic(op="add", protocol="explainer", **EXPLAINER_PARAMS)
    insts = [task.instance(s) for s in (0, 1)]
    xs, ys = explainer.FixedBatches([task, task], insts, [0, 1], 50)(6)
    layers = [("nalu", explainer.init("nalu", 10, 2, np.random.default_rng(0))),
              ("nalu", explainer.init("nalu", 2, 1, np.random.default_rng(1)))]
    layers = [(u, {k: np.stack([v, v * 0.5]) for k, v in p.items()}) for u, p in layers]
    lams = np.zeros((6, 2))
    one, copies = Trainer(layers, lr=0.1), Trainer(layers, lr=0.1)
    chunk = one.prepare(xs, ys)
    assert chunk["one_set"] and tuple(chunk["xs"].shape) == xs.shape[1:]
    one.train(lams=lams, **chunk)
    copies.train(np.ascontiguousarray(xs), np.ascontiguousarray(ys), lams)
    trained, expected = one.params(), copies.params()
    for mine, theirs in zip(trained, expected):
        for key in mine:
            np.testing.assert_array_equal(mine[key], theirs[key])
    assert not np.allclose(trained[0]["W_hat"], layers[0][1]["W_hat"])  # it trained


@pytest.fixture(scope="module")
def short_runs():
    """4 steps of the explainer's budget, a + b and a * b, two seeds, in both frameworks.
    Few steps: at lr 0.1 the frameworks' float32 rounding differences grow (measured: 0.4%
    apart in the test loss after 20 steps)."""
    from benchmarks import suite
    from models import supervised

    out = {}
    for fw in ("torch", "tf"):
        specs = suite.expand(["static_arithmetic"], ["nalu"], [fw], [0, 1],
                             suite.get_budget("explainer"), {"op": ["add", "mul"]}, steps=4)
        (group,) = suite.groups(specs)
        task = StaticArithmetic(**group[0].params)
        results, _ = supervised.run_group(task, group)
        out[fw] = {(s.params["op"], s.seed): r for s, r in zip(group, results)}
    return out


def test_short_run_keeps_the_last_step_and_reports_l2_losses(short_runs):
    for rec in short_runs["torch"].values():
        m, curve = rec["metrics"], rec["curve"]
        assert curve["step"] == [0, 4] and m["selected_step"] == 4  # no selection
        assert m["test_l2_loss"] == pytest.approx(0.5 * 10_000 * curve["extrapolation"][-1])
        assert m["train_l2_loss"] == pytest.approx(0.5 * 10_000 * curve["train"][-1])
        assert m["success"] == (m["test_l2_loss"] <= 8.575e-05)


def test_short_run_agrees_between_torch_and_tf(short_runs):
    assert short_runs["torch"].keys() == short_runs["tf"].keys()
    for key, rec in short_runs["torch"].items():
        other = short_runs["tf"][key]
        for name in ("test_l2_loss", "train_l2_loss", "interpolation_mse"):
            assert rec["metrics"][name] == pytest.approx(other["metrics"][name], rel=1e-3), \
                (key, name)
        for name in ("interpolation", "extrapolation", "train"):
            np.testing.assert_allclose(rec["curve"][name], other["curve"][name], rtol=1e-3)
