"""The TensorFlow units against the numpy reference: forward, gradients, replicas, training."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("keras")

from models import reference, registry  # noqa: E402
from models.tf import units  # noqa: E402
from models.tf.train import Trainer  # noqa: E402

tf = units.tf
UNITS = list(reference.UNITS)
SEEDS = (0, 1, 2)
N_IN, N_OUT = 5, 3


def _params(unit, seed):
    """Reference init rounded to float32, so tf and numpy see the same numbers."""
    p = reference.init(unit, N_IN, N_OUT, np.random.default_rng(seed))
    return {k: v.astype(np.float32).astype(np.float64) for k, v in p.items()}


def _inputs(seed):
    """Zeros, negatives, mixed signs and magnitudes up to 1e3."""
    rng = np.random.default_rng(100 + seed)
    rows = [np.zeros(N_IN), -np.ones(N_IN), np.full(N_IN, 1e3), np.full(N_IN, -1e3),
            np.array([1e3, -1e3, 0.0, 1.0, -0.5]), rng.uniform(-1e3, 1e3, N_IN)]
    x = np.vstack(rows + list(rng.normal(size=(6, N_IN)) * 3))
    return x.astype(np.float32).astype(np.float64)


def _tf_forward(unit, params, x):
    return units.make(unit, params)(tf.constant(x, tf.float32)).numpy()


def _assert_rows_close(got, want, x, rtol=1e-4, atol=1e-5):
    """rtol on each entry plus an atol scaled by the row's input and output magnitude,
    since float32 sums of terms ~1e3 may cancel."""
    scale = 1.0 + np.abs(x).max(-1, keepdims=True) + np.abs(want).max(-1, keepdims=True)
    bad = np.abs(got - want) > atol * scale + rtol * np.abs(want)
    assert got.shape == want.shape and not bad.any(), (
        f"{bad.sum()} mismatches, e.g. got {got[bad][:3]} want {want[bad][:3]}")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("unit", UNITS)
def test_forward_matches_reference(unit, seed):
    p, x = _params(unit, seed), _inputs(seed)
    with np.errstate(over="ignore"):  # the reference's sigmoid saturates at |x G| ~ 1e3
        want = reference.forward(unit, p, x)
    _assert_rows_close(_tf_forward(unit, p, x), want, x)


def _grad_inputs(unit, params, seed):
    """Inputs away from the kinks (|x| at 0, ReLU at 0 and 6) so finite differences hold."""
    rng = np.random.default_rng(200 + seed)
    x = rng.uniform(0.2, 2.0, (32, N_IN)) * rng.choice([-1.0, 1.0], (32, N_IN))
    x = x.astype(np.float32).astype(np.float64)
    if unit in ("relu", "relu6"):
        pre = reference.forward("linear", params, x)
        x = x[np.all((np.abs(pre) > 1e-2) & (np.abs(pre - 6.0) > 1e-2), axis=-1)]
    return x


def _fd_grad(unit, params, x, h=1e-6):
    """Central differences of sum(forward) in float64 for every parameter entry."""
    grads = {}
    for k, v in params.items():
        g = np.zeros_like(v)
        for i in np.ndindex(v.shape):
            up, down = dict(params), dict(params)
            up[k], down[k] = v.copy(), v.copy()
            up[k][i] += h
            down[k][i] -= h
            g[i] = (reference.forward(unit, up, x).sum()
                    - reference.forward(unit, down, x).sum()) / (2 * h)
        grads[k] = g
    return grads


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("unit", UNITS)
def test_gradient_matches_finite_differences(unit, seed):
    p = _params(unit, seed)
    x = _grad_inputs(unit, p, seed)
    assert len(x) >= 8
    layer = units.make(unit, p)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(layer(tf.constant(x, tf.float32)))
    got = dict(zip(unit_params(unit), tape.gradient(total, [getattr(layer, k) for k in
                                                             unit_params(unit)])))
    want = _fd_grad(unit, p, x)
    for k in unit_params(unit):
        g = got[k].numpy()
        np.testing.assert_allclose(g, want[k], rtol=1e-3, atol=1e-4 * (1 + np.abs(want[k]).max()),
                                   err_msg=f"{unit}.{k}")


def unit_params(unit):
    return reference.UNITS[unit].params


@pytest.mark.parametrize("unit", UNITS)
def test_replica_axis_matches_separate_units(unit):
    ps = [_params(unit, s) for s in range(4)]
    stacked = {k: np.stack([p[k] for p in ps]) for k in ps[0]}
    layer = units.make(unit, stacked)
    x = _inputs(0)
    xr = np.stack([_inputs(s) for s in range(4)])
    shared = layer(tf.constant(x, tf.float32)).numpy()
    shared1 = layer(tf.constant(x[None], tf.float32)).numpy()
    own = layer(tf.constant(xr, tf.float32)).numpy()
    assert shared.shape == own.shape == (4, len(x), N_OUT)
    for r, p in enumerate(ps):
        _assert_rows_close(shared[r], _tf_forward(unit, p, x), x, 1e-5, 1e-6)
        _assert_rows_close(shared1[r], shared[r], x, 1e-5, 1e-6)
        _assert_rows_close(own[r], _tf_forward(unit, p, xr[r]), xr[r], 1e-5, 1e-6)
    reg = layer.regulariser()
    if reference.UNITS[unit].regularised:
        np.testing.assert_allclose(reg.numpy(), reference.regulariser(unit, stacked), rtol=1e-5)
    else:
        assert reg is None


@pytest.mark.parametrize("unit", UNITS)
def test_params_round_trip(unit):
    stacked = registry.init_params(unit, N_IN, N_OUT, [0, 1])
    layer = units.make(unit, stacked)
    got = layer.get_params()
    assert set(got) == set(reference.UNITS[unit].params)
    for k, v in stacked.items():
        assert got[k].dtype == np.float32 and got[k].shape == v.shape
        np.testing.assert_array_equal(got[k], v.astype(np.float32))
    other = registry.init_params(unit, N_IN, N_OUT, [7, 8])
    layer.set_params(other)
    for k, v in layer.get_params().items():
        np.testing.assert_array_equal(v, other[k].astype(np.float32))
    got[next(iter(got))][...] = 123.0  # a copy, not a view of the weight
    assert not np.any(layer.get_params()[next(iter(got))] == 123.0)


def _linear_task(R=3, T=400, B=64, n_in=4, seed=0):
    rng = np.random.default_rng(seed)
    xs = rng.uniform(-2, 2, (T, 1, B, n_in)).astype(np.float32)
    ys = np.repeat(xs[..., :1] + xs[..., 1:2], R, axis=1)  # y = x0 + x1
    return xs, ys


@pytest.mark.parametrize("jit", [True, False])
def test_trainer_nau_decreases_loss(jit):
    R, T = 3, 400
    xs, ys = _linear_task(R, T)
    trainer = Trainer([("nau", registry.init_params("nau", 4, 1, range(R)))], lr=1e-2,
                      jit_compile=jit)
    x_eval = xs[:8, 0].reshape(-1, 4)
    y_eval = np.repeat((x_eval[:, :1] + x_eval[:, 1:2])[None], R, axis=0)
    before = trainer.errors(x_eval, y_eval, chunk=100)
    lams = np.zeros((T, 1), np.float32)
    trainer.train(xs[:T // 2], ys[:T // 2], lams[:T // 2])
    trainer.train(xs[T // 2:], ys[T // 2:], lams[T // 2:])
    after = trainer.errors(x_eval, y_eval, chunk=100)
    assert before.shape == after.shape == (R,) and after.dtype == np.float64
    assert np.all(after < 0.1 * before)
    w = trainer.params()[0]["W"]
    np.testing.assert_allclose(w[:, :2, 0], 1.0, atol=0.05)
    assert trainer._train.traces() == 1  # no retrace per call


def test_trainer_projects_nau_into_range():
    R, T = 2, 50
    rng = np.random.default_rng(1)
    xs = rng.uniform(-2, 2, (T, R, 32, 3)).astype(np.float32)
    ys = 3.0 * xs[..., :1] - 3.0 * xs[..., 1:2]  # needs |W| > 1: pushes against the clip
    trainer = Trainer([("nau", registry.init_params("nau", 3, 1, range(R)))], lr=0.3)
    trainer.train(xs, ys, np.full((T, 1), 0.01, np.float32))
    w = trainer.params()[0]["W"]
    assert np.all(np.abs(w) <= 1.0)
    np.testing.assert_array_equal(w[:, 0, 0], 1.0)
    np.testing.assert_array_equal(w[:, 1, 0], -1.0)


def test_trainer_xla_matches_graph_mode():
    """XLA only reorders float32 arithmetic: a stable NAU-NMU run stays close."""
    R, T = 2, 100
    rng = np.random.default_rng(2)
    xs = rng.uniform(0.5, 1.5, (T, 1, 32, 4)).astype(np.float32)
    ys = np.repeat((xs[..., :1] + xs[..., 1:2]) * xs[..., 2:3], R, axis=1)
    layers = [("nau", registry.init_params("nau", 4, 2, range(R))),
              ("nmu", registry.init_params("nmu", 2, 1, range(R)))]
    lams = np.full((T, 2), 0.01, np.float32)
    runs = [Trainer(layers, lr=1e-2, jit_compile=jit) for jit in (True, False)]
    for trainer in runs:
        trainer.train(xs, ys, lams)
    for a, b in zip(*(t.params() for t in runs)):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], atol=1e-4)


def test_unknown_device():
    with pytest.raises(ValueError):
        Trainer([("nau", registry.init_params("nau", 2, 1, [0]))], lr=1e-3, device="tpu")


def test_gpu_index_is_tensorflows_own():
    from models.tf.base import device_name

    gpus = len(tf.config.list_physical_devices("GPU"))
    with pytest.raises(RuntimeError, match=f"'cuda:{gpus}' requested but TensorFlow sees "
                                           f"{gpus} GPU"):
        device_name(f"cuda:{gpus}")
    if gpus:
        assert device_name(f"gpu:{gpus - 1}") == f"/GPU:{gpus - 1}"
