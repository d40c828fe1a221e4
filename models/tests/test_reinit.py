"""[iNALU]'s optional re-initialisation of stalled replicas (tasks.base.Reinit, engine.stalled)."""
import numpy as np
import pytest

from benchmarks import runner, suite
from models import reference, registry
from models.engine import stalled
from tasks.base import INIT_STREAM, Reinit, TaskError
from tasks.static_arithmetic import StaticArithmetic

FRAMEWORKS = [pytest.param(fw, marks=pytest.mark.skipif(
    registry.framework_missing(fw) is not None, reason=f"{fw} not installed"))
    for fw in registry.FRAMEWORKS]
TINY = suite.Budget("tiny", steps=60, eval_interval=10, seeds=2, description="tests")
FORCED = (2, 0.0, 0.0)  # every 2 evaluations every finite MSE > 0 counts as stalled


def test_stalled_rule():
    rule = Reinit(window=4, factor=1.0, level=1.0)
    err = np.array([[9.0, 8.0, 6.0, 4.0, 2.0],    # improving
                    [9.0, 5.0, 5.0, 5.0, 5.1],    # flat, above the level
                    [9.0, 0.5, 0.5, 0.5, 0.5],    # flat, below the level
                    [9.0, 5.0, np.nan, 5.0, 5.0]])  # non-finite: never
    since = np.zeros(4, dtype=int)
    np.testing.assert_array_equal(stalled(err, 4, since, rule), [False, True, False, False])
    assert not stalled(err, 3, since, rule).any()  # not a multiple of the window yet
    assert not stalled(err, 4, np.array([0, 2, 0, 0]), rule).any()  # re-initialised at 2
    # a factor < 1 asks for a given improvement: replica 0's recent mean 3 vs older 7
    assert stalled(err, 4, since, Reinit(4, 0.4, 0.0))[0]  # 3 > 0.4 * 7: not enough
    assert not stalled(err, 4, since, Reinit(4, 0.5, 0.0))[0]  # 3 < 0.5 * 7
    with pytest.raises(ValueError):
        Reinit(window=3)


def test_task_parameter():
    assert StaticArithmetic().reinit is None
    # off, it is left out of the task's params, so specs and record ids stay as before
    for off in (False, "false", "off"):
        assert "reinit" not in StaticArithmetic(reinit=off).params
    assert StaticArithmetic(reinit=True).params["reinit"] == (10, 1.0, 1.0)
    assert "reinit" not in str(StaticArithmetic(reinit="false"))  # the default: no name change
    assert StaticArithmetic(reinit="true").reinit == Reinit()
    assert StaticArithmetic(reinit=[4, 0.5, 1e-3]).reinit == Reinit(4, 0.5, 1e-3)
    for bad in ("yes", [3, 1, 1], [4, -1, 1], 2):
        with pytest.raises(TaskError, match="bad reinit"):
            StaticArithmetic(reinit=bad)


def _moments(trainer, framework, layer, key):
    if framework == "torch":
        state = trainer.opt.state[getattr(trainer.net.units[layer], key)]
        return [state["exp_avg"].numpy().copy(), state["exp_avg_sq"].numpy().copy()]
    i = trainer.opt._get_variable_index(getattr(trainer.net.units[layer], key))
    return [trainer.opt._momentums[i].numpy().copy(), trainer.opt._velocities[i].numpy().copy()]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_trainer_reinit_sets_weights_and_zeroes_moments(framework):
    seeds = [0, 1, 2]
    init = [("inalu", registry.init_params("inalu", 2, 1, [[s, INIT_STREAM, 0] for s in seeds]))]
    module = registry.framework_module(framework, "train")
    trainer, twin = (module.Trainer(init, lr=1e-2) for _ in range(2))
    rng = np.random.default_rng(0)
    xs = rng.uniform(1, 2, size=(6, 1, 16, 2)).astype(np.float32)
    ys = np.repeat(xs[..., :1] * xs[..., 1:], 3, axis=1)
    lams = np.zeros((3, 1), dtype=np.float32)
    for t in (trainer, twin):
        t.train(xs[:3], ys[:3], lams)
    before = trainer.params()[0]
    moments = {k: _moments(trainer, framework, 0, k) for k in before}
    mask = np.array([False, True, False])
    new = registry.init_params("inalu", 2, 1, [[1, INIT_STREAM, 0, 1]])
    trainer.reinit(mask, [new])
    after = trainer.params()[0]
    for k in before:
        np.testing.assert_array_equal(after[k][1], new[k][0].astype(np.float32))
        np.testing.assert_array_equal(after[k][~mask], before[k][~mask])
        for m_before, m_after in zip(moments[k], _moments(trainer, framework, 0, k)):
            assert np.all(m_before[1] != 0) or k == "g"
            np.testing.assert_array_equal(m_after[1], 0.0)
            np.testing.assert_array_equal(m_after[~mask], m_before[~mask])
    # the other replicas then train on bit for bit as without the re-initialisation (Adam
    # is elementwise, and the shared step count is the same in both runs)
    for t in (trainer, twin):
        t.train(xs[3:], ys[3:], lams)
    for k, v in trainer.params()[0].items():
        np.testing.assert_array_equal(v[~mask], twin.params()[0][k][~mask])


def _run(framework, model, reinit, input_size=2):
    params = {"op": ["mul"], "input_size": [input_size], "eval_size": [200]}
    if reinit is not None:
        params["reinit"] = [reinit]
    specs = suite.expand(["static_arithmetic"], [model], [framework], [0, 1], TINY, params)
    return {r["seed"]: r for r in runner.run_group(specs)}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_forced_stall_draws_the_next_attempt(framework, monkeypatch):
    trainer_cls = registry.framework_module(framework, "train").Trainer
    calls = []
    original = trainer_cls.reinit

    def spy(self, mask, layers, **kwargs):
        before = self.params()
        original(self, mask, layers, **kwargs)
        calls.append((mask.copy(), self.params(), before, layers))

    monkeypatch.setattr(trainer_cls, "reinit", spy)
    records = _run(framework, "inalu", FORCED)
    assert len(calls) == 2  # evaluations 2 and 4 of 0..6 (none at the last)
    for attempt, (mask, params, _, _) in enumerate(calls, start=1):
        assert mask.all()
        for r, seed in enumerate((0, 1)):
            want = reference.init("inalu", 2, 1, np.random.default_rng(
                [seed, INIT_STREAM, 0, attempt]))
            for k in want:
                np.testing.assert_array_equal(params[0][k][r], want[k].astype(np.float32))
    for seed in (0, 1):
        m = records[seed]["metrics"]
        assert m["reinitialisations"] == 2 and m["reinit_steps"] == [20, 40]

    calls.clear()  # in a two-layer model only the iNALU layer gets new weights
    records = _run(framework, "nau-inalu", FORCED, input_size=4)
    assert len(calls) == 2 and records[0]["metrics"]["reinitialisations"] == 2
    for _, params, before, layers in calls:
        assert layers[0] is None
        for k in params[0]:
            np.testing.assert_array_equal(params[0][k], before[0][k])
    calls.clear()  # a unit that does not opt in is never re-initialised
    records = _run(framework, "nau", FORCED)
    assert not calls and records[0]["metrics"]["reinitialisations"] == 0
    records = _run(framework, "inalu", None)  # off: not called, not recorded
    assert not calls and "reinitialisations" not in records[0]["metrics"]


def test_report_column_reads_off_where_the_spec_left_it_out():
    from reports import frame

    records = [{"id": str(i), "task": "static_arithmetic", "task_params": params}
               for i, params in enumerate(({"op": "mul"}, {"op": "mul", "reinit": [4, 1, 0]}))]
    assert frame.frame(records)["param_reinit"].tolist() == ["off", "[4,1,0]"]
    assert "param_reinit" not in frame.frame(records[:1])
