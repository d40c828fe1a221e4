"""[Primer]'s settings (`models.primer`): its schedules as its loop computes them, its
initialisation, its re-initialisation rule against a step-by-step replay of the loop, and
per-replica regulariser weights and gradient clipping in both trainers."""
import numpy as np
import pytest

from models import primer, registry
from tasks.base import PrimerReinit

FRAMEWORKS = [pytest.param(fw, marks=pytest.mark.skipif(
    registry.framework_missing(fw) is not None, reason=f"{fw} not installed"))
    for fw in registry.FRAMEWORKS]


def test_every_setting_names_the_script_lines_it_comes_from():
    for unit, settings in primer.SETTINGS.items():
        assert "SH:" in settings.source, unit  # the benchmark script's block for the unit
        if settings.init is not None:  # and the layer whose initialisation it takes
            assert {"nac": "NACL:", "nau": "NAUL:"}[settings.init] in settings.source, unit


def test_schedules_follow_the_loop_iteration_before_each_update():
    t = np.array([1, 10_000, 10_001, 20_000, 20_001, 27_501, 35_001, 50_000])  # updates
    w = primer.weights(["nau", "nmu", "npu", "realnpu", "nac"], ["mul", "mul", "mul", "div",
                                                                 "mul"][:1], t, None)
    assert w.shape == (len(t), 1, 5) and w.dtype == np.float32
    nau, nmu, npu, nac = w[:, 0, 0], w[:, 0, 1], w[:, 0, 2], w[:, 0, 4]
    # update t is the loop's iteration e = t - 1: the ramp is 0 at e = 20,000, full at 35,000
    np.testing.assert_allclose(nau, np.float32([0, 0, 0, 0, 0, 0.005, 0.01, 0.01]))
    np.testing.assert_allclose(nmu, np.float32([0, 0, 0, 0, 0, 5, 10, 10]))
    # beta x10 at iterations 10,000 and 20,000, mul from 1e-7 (SH:63)
    np.testing.assert_allclose(npu, np.float32([1e-7, 1e-7, 1e-6, 1e-6, 1e-5, 1e-5, 1e-5, 1e-5]))
    assert not nac.any()
    # per op: div's beta is 100 times smaller (SH:132); an op [Primer] does not run takes mul's
    ops = ["mul", "div", "add"]
    beta = primer.weights(["npu"], ops, t, None)[:, :, 0]
    np.testing.assert_allclose(beta[:, 1], beta[:, 0] / 100, rtol=1e-6)
    np.testing.assert_array_equal(beta[:, 2], beta[:, 0])


def test_inalu_penalty_is_gated_per_replica_on_its_last_interpolation_error():
    t = np.array([10_001, 10_002, 30_000])
    w = primer.weights(["inalu"], ["add"] * 3, t, np.array([0.5, 2.0, np.nan]))[:, :, 0]
    np.testing.assert_allclose(w, np.float32([[0, 0, 0], [0.05, 0, 0], [0.05, 0, 0]]))


def test_initialisation_as_primer_draws_it():
    assert primer.nac_radius(2, 1) == pytest.approx(9.4714, abs=1e-4)
    # the radius gives W = tanh(W_hat) sigmoid(M_hat) the variance 2 / max(fan, 5)
    rng = np.random.default_rng(0)
    for n_in, n_out in ((2, 1), (10, 4)):
        r = primer.nac_radius(n_in, n_out)
        w = np.tanh(rng.uniform(-r, r, 10**6)) / (1 + np.exp(-rng.uniform(-r, r, 10**6)))
        assert w.var() == pytest.approx(2 / max(n_in + n_out, 5), rel=0.01)
    for unit in ("nac", "nacmul", "nalu", "gnalu"):
        p = primer.init(unit, 2, 1, np.random.default_rng(1))
        assert 1.5 < np.abs(p["W_hat"]).max() <= 9.48  # beyond the suite's Xavier 1.41
        assert ("G" in p) == (unit in ("nalu", "gnalu"))
    assert np.abs(primer.init("nau", 2, 1, np.random.default_rng(1))["W"]).max() <= 0.5
    for unit in ("nmu", "npu", "inalu", "nalu_sep"):  # the suite's own initialisation
        a = primer.init(unit, 2, 1, np.random.default_rng(3))
        b = registry.init_params(unit, 2, 1, [3])
        for k in a:
            np.testing.assert_array_equal(a[k], b[k][0])


def _replay(values, eval_steps, rule):
    """[Primer]'s loop, iteration by iteration: the list, the checks, the reset. Returns per
    evaluation index the replicas re-initialised in the interval after it."""
    fired = []
    for r, series in enumerate(values):
        stored = []
        for e, start in enumerate(eval_steps[:-1]):
            for i in range(start, eval_steps[e + 1]):
                stored.append(series[e])
                if i % rule.interval == 0 and i > 0 and len(stored) > rule.stored:
                    last = stored[len(stored) // 2:]
                    if np.mean(stored[:len(stored) // 2]) <= np.mean(last) + np.std(last) \
                            and np.mean(last) > rule.level:
                        fired.append((e, r))
                        stored = []
    return sorted(fired)


def test_reinit_history_fires_where_primers_loop_would():
    rule = PrimerReinit(interval=10, stored=500)
    eval_steps = np.arange(0, 3001, 100)
    rng = np.random.default_rng(4)
    n = len(eval_steps)
    values = np.stack([
        np.full(n, 5.0),  # stalled above the level: fires at the first check past 500
        np.full(n, 0.5),  # stalled below it: never
        np.geomspace(1e4, 2.0, n),  # improving: never
        5.0 + rng.normal(0, 0.5, n),  # noise around 5: fires, again and again
        # improves, then stalls: the window since the last re-initialisation grows and keeps
        # the early errors in its first half, so never
        np.r_[np.geomspace(1e3, 3.0, n // 2), np.full(n - n // 2, 3.0)],
        np.r_[np.full(10, np.nan), np.full(n - 10, 5.0)],  # non-finite stays in its list
    ])
    history = primer.History(rule, len(values), eval_steps)
    got = []
    for e in range(n - 1):
        got += [(e, int(r)) for r in np.flatnonzero(history.stalled(values[:, e], e))]
    expected = _replay(values, eval_steps, rule)
    assert got == expected
    fired = {r for _, r in expected}
    assert fired == {0, 3} and sum(r == 3 for _, r in expected) >= 2


def _trainer(framework, unit, seeds, **kwargs):
    init = [(unit, registry.init_params(unit, 2, 1, [[s] for s in seeds]))]
    return registry.framework_module(framework, "train").Trainer(init, lr=1e-2, **kwargs)


def _data(replicas, steps=60, seed=5):
    rng = np.random.default_rng(seed)
    xs = rng.uniform(1, 2, (steps, 1, 32, 2)).astype(np.float32)
    ys = np.repeat(xs[..., :1] + xs[..., 1:], replicas, axis=1)
    return xs, ys


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_per_replica_weights_are_each_replicas_own(framework):
    """(T, R, layers) weights: the same as (T, layers) where every replica has the same,
    bit for bit; each replica's own otherwise, as if it trained alone."""
    xs, ys = _data(2)
    shared = np.full((len(xs), 1), 0.1, np.float32)
    a, b = _trainer(framework, "nau", [0, 1]), _trainer(framework, "nau", [0, 1])
    a.train(xs=xs, ys=ys, lams=shared)
    b.train(xs=xs, ys=ys, lams=np.repeat(shared[:, None], 2, axis=1))
    for k, v in a.params()[0].items():
        np.testing.assert_array_equal(v, b.params()[0][k])
    own = np.stack([np.zeros(len(xs)), np.full(len(xs), 0.1)], axis=1)[..., None]
    both = _trainer(framework, "nau", [0, 1])
    both.train(xs=xs, ys=ys, lams=own.astype(np.float32))
    for r, seed in enumerate((0, 1)):
        alone = _trainer(framework, "nau", [seed])
        alone.train(xs=xs, ys=ys[:, :1], lams=own[:, r].astype(np.float32))
        np.testing.assert_allclose(both.params()[0]["W"][r], alone.params()[0]["W"][0],
                                   rtol=1e-6, atol=1e-7)


def test_gradient_clipping_agrees_across_frameworks_and_changes_training():
    if any(registry.framework_missing(fw) for fw in registry.FRAMEWORKS):
        pytest.skip("needs both frameworks")
    xs, ys = _data(2)
    ys = 50 * ys  # large errors: gradients far beyond the clip
    lams = np.zeros((len(xs), 1), np.float32)
    runs = {}
    for fw in registry.FRAMEWORKS:
        for clip in (None, 0.1):
            trainer = _trainer(fw, "inalu", [0, 1], clip_grad=clip)
            trainer.train(xs=xs, ys=ys, lams=lams)
            runs[fw, clip] = trainer.params()[0]
    for k in runs["torch", 0.1]:
        np.testing.assert_allclose(runs["torch", 0.1][k], runs["tf", 0.1][k], rtol=1e-4,
                                   atol=1e-5)
    assert not np.allclose(runs["torch", 0.1]["g"], runs["torch", None]["g"])
