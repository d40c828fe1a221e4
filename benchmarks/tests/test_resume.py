"""Checkpoints: a program stopped at a random chunk of steps and resumed from its checkpoint
writes the records of an uninterrupted run, bit for bit, in every task whose seeds train
as one program and in both frameworks; a checkpoint that is not the program's is set aside."""
from __future__ import annotations

import errno
import json
import os
import random

import numpy as np
import pytest

from benchmarks import runner, suite
from models import actor_critic, checkpoint, registry
from tasks.base import PrimerReinit, Reinit

TINY = suite.Budget("tiny", steps=120, eval_interval=20, seeds=2, description="tests")

# (task, model, task parameters): a program across ops whose re-initialisation fires (every 2
# evaluations); the command line's tests (test_resume_cli.py) stop every task's programs
CASES = {
    "static-reinit": ("static_arithmetic", "inalu", {"op": ["add", "mul"],
                                                     "reinit": [[2, 0.0, 0.0]],
                                                     "input_size": [10], "eval_size": [200]}),
    "static": ("static_arithmetic", "nau", {"op": ["add"], "input_size": [10],
                                            "eval_size": [200]}),
    # its own A2C loop (not engine.fit), the seeds as one program with one checkpoint
    "grid": ("grid_world", "lstm+nau", {"eval_episodes": [2], "test_T": [[1, 20]]}),
}


def comparable(record: dict) -> str:
    """What must not change with an interruption: everything but times and the machine."""
    return json.dumps({k: record[k] for k in ("id", "status", "reason", "metrics", "curve")},
                      sort_keys=True)


def specs_of(case: str, framework: str, steps: int = TINY.steps):
    task, model, grid = CASES[case]
    specs = suite.expand([task], [model], [framework], [0, 1], TINY, grid, steps=steps)
    groups = suite.groups(specs)
    assert len(groups) == 1, "the case must be one program"
    return groups[0]


def interrupted_then_resumed(group, plan, stop_after: int) -> list[dict]:
    """Run the group, request a stop at progress call ``stop_after`` (the fit saves and
    stops at its next chunk boundary), then run it again from its checkpoint."""
    calls = []

    def progress(n):
        calls.append(n)
        if len(calls) == stop_after:
            checkpoint.request_stop()

    checkpoint.clear_stop()
    try:
        with pytest.raises(checkpoint.Interrupted):
            runner.run_group(group, progress=progress, checkpoints=plan)
    finally:
        checkpoint.clear_stop()
    assert checkpoint.files(plan.directory, [s.id for s in group]), "no checkpoint saved"
    done = []
    records = runner.run_group(group, progress=done.append, checkpoints=plan)
    assert sum(done) == sum(s.steps for s in group)
    return records, len(done)


@pytest.mark.parametrize("case", ["static-reinit"])
def test_resume_is_bit_for_bit(case, framework, tmp_path):
    if registry.framework_missing(framework):
        pytest.skip(registry.framework_missing(framework))
    group = specs_of(case, framework)
    calls = []
    plain = runner.run_group(group, progress=calls.append)
    assert {r["status"] for r in plain} <= {"ok", "diverged"}, plain[0]["reason"]
    stop_after = random.Random(f"{case}-{framework}").randrange(2, len(calls) - 1)
    plan = checkpoint.Plan(str(tmp_path / "ckpt"), every=1e-9)  # at every chunk boundary
    resumed, progress_calls = interrupted_then_resumed(group, plan, stop_after)
    assert [comparable(r) for r in resumed] == [comparable(r) for r in plain]
    if "reinit" in case:
        assert all(r["metrics"]["reinitialisations"] > 0 for r in plain)
    assert progress_calls < len(calls), "the resumed run reports the steps done before at once"


@pytest.mark.parametrize("where", ["mid-way", "at an evaluation", "one replica diverged"])
def test_grid_world_resumes_bit_for_bit(where, framework, tmp_path, monkeypatch):
    if registry.framework_missing(framework):
        pytest.skip(registry.framework_missing(framework))
    if where == "one replica diverged":  # seed 1's policy overflows: diverged at update 1
        init = actor_critic.init_agent

        def explosive(model, seed, *args, **kw):
            params = init(model, seed, *args, **kw)
            if seed == 1:
                params["pi_W"][:] = 1e38
            return params

        monkeypatch.setattr(actor_critic, "init_agent", explosive)
    group = specs_of("grid", framework, steps=40)
    plain = runner.run_group(group)
    want = ["ok", "diverged" if where == "one replica diverged" else "ok"]
    assert [r["status"] for r in plain] == want, plain[0].get("traceback")
    plan = checkpoint.Plan(str(tmp_path / "ckpt"), every=1e-9)
    # one progress call an update, with both seeds' steps; the stop comes after update 25,
    # or after update 20, which is evaluated
    stop_after = 20 if where == "at an evaluation" else 25
    resumed, progress_calls = interrupted_then_resumed(group, plan, stop_after)
    assert [comparable(r) for r in resumed] == [comparable(r) for r in plain]
    # the rerun reports the saved updates in one call and trains only the rest
    assert progress_calls == 1 + 40 - stop_after
    assert [r["train_seconds"] > 0 for r in resumed] == [True, True]


def test_a_checkpoint_of_another_program_is_set_aside(framework, tmp_path, capsys):
    if registry.framework_missing(framework):
        pytest.skip(registry.framework_missing(framework))
    group = specs_of("static", framework)
    plan = checkpoint.Plan(str(tmp_path / "ckpt"), every=1e-9)
    plain = runner.run_group(group)
    interrupted_then_resumed(group, plan, stop_after=3)  # leaves a final checkpoint
    (path,) = checkpoint.files(plan.directory, [s.id for s in group])
    # the same file under the key of a program with other steps: its plan differs
    other = specs_of("static", framework, steps=TINY.steps + 20)
    moved = path.with_name(f"{checkpoint.group_key([s.id for s in other])}-0.npz")
    path.rename(moved)
    records = runner.run_group(other, checkpoints=plan)
    err = capsys.readouterr().err
    assert f"checkpoint {moved} set aside" in err and "its ids" in err
    assert moved.with_suffix(".rejected").exists()
    assert all(r["status"] == "ok" for r in records)
    # a truncated file: unreadable, set aside, the program starts fresh and is exact
    interrupted_then_resumed(group, plan, stop_after=3)
    (path,) = checkpoint.files(plan.directory, [s.id for s in group])
    path.write_bytes(path.read_bytes()[:200])
    again = runner.run_group(group, checkpoints=plan)
    assert "unreadable" in capsys.readouterr().err
    assert [comparable(r) for r in again] == [comparable(r) for r in plain]


def test_nests_round_trip():
    tree = {"a": [np.arange(3.0), None, {"b": np.zeros((2, 0), np.float32)}], "c": 1.5,
            "d": [[1, 2], []], "e": "text"}
    arrays: dict = {}
    layout = json.loads(json.dumps(checkpoint.pack(tree, arrays)))
    back = checkpoint.unpack(layout, arrays)
    assert checkpoint.shapes(back) == checkpoint.shapes(tree)
    assert back["d"] == [[1, 2], []] and back["c"] == 1.5 and back["a"][1] is None


class Regression:
    """A numpy trainer: R replicas of a linear model by SGD, with `fit`'s optional parts."""

    def __init__(self, replicas: int):
        self.w = np.zeros((replicas, 3))
        self.steps = np.zeros(1)

    def train(self, xs, ys, lams):
        for x, y in zip(xs, ys):
            pred = np.einsum("rbi,ri->rb", x, self.w)
            self.w -= 0.05 * np.einsum("rb,rbi->ri", pred - y, x) / x.shape[1]
            self.steps += 1

    def params(self):
        return [{"w": self.w.copy()}]

    def get_state(self):
        return {"w": self.w.copy(), "steps": self.steps.copy()}

    def set_state(self, state):
        if state["w"].shape != self.w.shape:
            raise ValueError("other shapes")
        self.w[...], self.steps[...] = state["w"], state["steps"]

    def reinit(self, mask, layers, keep_moments=False):
        self.w[mask] = layers[0]["w"]


def engine_fit(rule, stop_at=None, directory=None):
    """A fit of 3 replicas with re-initialisation ``rule``, checkpointed into ``directory``
    and stopped after progress call ``stop_at``."""
    from models import engine

    replicas, rngs = 3, [np.random.default_rng([r, 2]) for r in range(3)]
    trainer = Regression(replicas)
    target = np.array([1.0, -2.0, 0.5])

    def batches(n):
        xs = np.stack([g.normal(size=(n, 8, 3)) for g in rngs], axis=1)
        return {"xs": xs, "ys": xs @ target}

    probe = np.random.default_rng(7).normal(size=(50, 3))
    evaluate = lambda: {"mse": ((probe @ trainer.w.T - (probe @ target)[:, None]) ** 2  # noqa: E731
                                ).mean(axis=0) + 1e-3 * trainer.steps}  # worsening: stalled
    fresh = lambda which, attempts: [{"w": np.asarray(  # noqa: E731
        [np.random.default_rng([int(r), int(a)]).normal(size=3) for r, a in zip(which, attempts)])}]
    cfg = engine.TrainConfig(steps=400, eval_interval=10, reinit=rule)
    calls = []

    def progress(n):
        calls.append(n)
        if len(calls) == stop_at:
            checkpoint.request_stop()

    plan = checkpoint.Plan(str(directory), every=1e-9) if directory else None
    with checkpoint.active(plan, ["a" * 20]):
        return engine.fit(trainer, ["linear"], batches, evaluate, cfg, replicas,
                          lams=lambda steps: np.zeros((len(steps), 1)), chunk=7,
                          fresh=fresh, streams=rngs, progress=progress)


@pytest.mark.parametrize("rule", [Reinit(window=4, factor=0.0, level=0.0),
                                  PrimerReinit(interval=3, stored=20, level=0.0)],
                         ids=["suite", "primer"])
def test_engine_resumes_its_reinit_state(rule, tmp_path):
    """The re-initialisation rules' state (each replica's attempts, [Primer]'s stored
    losses) survives a stop: the resumed fit re-initialises where the plain one does."""
    plain = engine_fit(rule)
    assert any(plain.extra["reinit_steps"]), "the rule should fire in this fit"
    for stop_at in (5, 23, 41):
        checkpoint.clear_stop()
        try:
            with pytest.raises(checkpoint.Interrupted):
                engine_fit(rule, stop_at, tmp_path)
        finally:
            checkpoint.clear_stop()
        resumed = engine_fit(rule, None, tmp_path)
        assert resumed.extra == plain.extra
        for name in plain.errors:
            np.testing.assert_array_equal(resumed.errors[name], plain.errors[name])
        np.testing.assert_array_equal(resumed.best_index, plain.best_index)
        np.testing.assert_array_equal(resumed.best[0]["w"], plain.best[0]["w"])
        for path in tmp_path.glob("*.npz"):
            path.unlink()


def test_a_checkpoint_that_cannot_be_written_is_said_once_and_training_goes_on(
        framework, tmp_path, monkeypatch, capsys):
    if registry.framework_missing(framework):
        pytest.skip(registry.framework_missing(framework))
    group = specs_of("static", framework)
    plain = runner.run_group(group)
    real = os.replace

    def full_disk(src, dst):
        if str(dst).endswith(".npz"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", full_disk)
    plan = checkpoint.Plan(str(tmp_path / "ckpt"), every=1e-9)
    records = runner.run_group(group, checkpoints=plan)
    err = capsys.readouterr().err
    assert err.count("cannot write checkpoint") == 1 and "No space left" in err
    assert [comparable(r) for r in records] == [comparable(r) for r in plain]
    assert not list((tmp_path / "ckpt").iterdir()), "no temporary file is left"
