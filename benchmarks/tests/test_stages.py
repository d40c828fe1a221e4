"""Stages: runs scored against other runs (sequential MNIST's reference runs) train after
them, in one `run`, on every executor, resuming like any run.

The training here is mostly a stand-in loop (`run_group` below: each answer off by an
amount fixed per run, then the task's own `metrics`), so that the ordering tests are fast;
everything around it is the suite's: stages, executors, records, scoring. The last test
trains for real (`models.image_sequence`, [NAU]'s accumulator core).
"""
import importlib.util
import json
import os
import time
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks import cli, runner, suite
from models import registry
from tasks.sequential_mnist import SequentialMNIST, thresholds

FRAMEWORK = next((f for f in registry.FRAMEWORKS if not registry.framework_missing(f)), None)
pytestmark = pytest.mark.skipif(FRAMEWORK is None, reason="neither torch nor tensorflow")
LOG = "ARITHBENCH_TEST_STAGES_LOG"  # where the stand-in loop notes each group's start, end
FAIL = "ARITHBENCH_TEST_STAGES_FAIL"  # a reference seed whose group raises
# operation=prod: 10 reference runs (nmu, seeds 0-9), 3 a program here (4 groups)
ARGS = ["run", "--tasks", "sequential_mnist", "--units", "nmu,lstm", "--frameworks",
        str(FRAMEWORK), "--seeds", "0-1", "--budget", "smoke", "--steps", "2", "--quiet",
        "--max-replicas", "3", "--param", "operation=prod", "--param", "source=sklearn",
        "--param", "test_lengths=1,2"]
_run_work = runner.run_work


def run_group(task, specs, progress=None):
    """The stand-in for training: a reference run's answers are off by 0.1, 0.2 or 0.3 (by
    seed), an nmu run's are exact, any other's off by 10; scored by the task's metrics."""
    _log("start", specs)
    if task.simplification and str(os.environ.get(FAIL)) in {str(s.seed) for s in specs}:
        raise RuntimeError("reference run failed")
    out = []
    for spec in specs:
        off = 0.1 * (1 + spec.seed % 3) if task.simplification else \
            0.0 if spec.unit == "nmu" else 10.0
        best = {L: y + off for L, (_, y) in task.eval_sets.items()}
        fit = SimpleNamespace(best=best, selected_step=spec.steps, diverged=False, extra={})
        out.append({"status": "ok", "reason": "", "metrics": task.metrics(fit),
                    "curve": {"step": [0, spec.steps]}})
        if progress:
            progress(spec.steps)
    time.sleep(0.05)  # groups on two workers overlap
    _log("end", specs)
    return out, 0.01


def _log(what, specs):
    line = " ".join([what, str(time.time()), *(s.id for s in specs)])
    with open(os.environ[LOG], "a") as fh:
        fh.write(line + "\n")


def _work_with_stand_in(work, progress=None, checkpoints=None):
    """`runner.run_work` with the stand-in loop, also in a spawned worker process."""
    SequentialMNIST.loop = __name__
    return _run_work(work, progress=progress, checkpoints=checkpoints)


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    monkeypatch.setattr(SequentialMNIST, "loop", __name__)
    monkeypatch.setattr(runner, "run_work", _work_with_stand_in)
    monkeypatch.setenv(LOG, str(tmp_path / "log"))
    monkeypatch.delenv(FAIL, raising=False)
    monkeypatch.delenv("ARITHBENCH_MNIST", raising=False)
    return tmp_path / "log"


def _events(log):
    """(what, time, ids) per logged group start and end."""
    if not log.exists():
        return []
    return [(w, float(t), set(ids)) for w, t, *ids in
            (line.split() for line in log.read_text().splitlines())]


def _records(results):
    out = [json.loads(p.read_text()) for p in results.glob("*.json")]
    refs = [r for r in out if r["task_params"]["simplification"] == "solved-accumulator"]
    return refs, [r for r in out if r not in refs]


def _check_scored(refs, runs):
    """Every run scored against the reference runs' test MSEs, [NAU]'s rule."""
    ok = sorted((r for r in refs if r["status"] == "ok"), key=lambda r: r["seed"])
    bar = thresholds([[r["metrics"]["mse_1"], r["metrics"]["mse_2"]] for r in ok])
    for r in runs:
        m = r["metrics"]
        assert m["references_ok"] is True and m["scored"] is True and r["reason"] == ""
        np.testing.assert_allclose([m["threshold_1"], m["threshold_2"]], bar, rtol=1e-12)
        assert m["reference_runs"] == len(ok)
        assert m["success"] is (r["unit"] == "nmu")


def test_references_form_the_first_stage_once_for_all_runs_they_score():
    budget = suite.get_budget("smoke")
    grid = {"operation": ["prod"], "source": ["sklearn"], "test_lengths": [[1, 2]]}
    specs = suite.expand(["sequential_mnist"], ["nmu", "lstm"], ["torch", "tf"], [0, 1],
                         budget, grid, steps=2)
    # a reference run also asked for directly is trained once
    direct = suite.expand(["sequential_mnist"], ["nmu"], ["torch"], [3], budget,
                          {**grid, "simplification": ["solved-accumulator"]}, steps=2)
    staged = suite.stages([*specs, *direct], steps=2)
    refs, runs = staged.runs
    assert set(runs) == set(specs) and len(refs) == 20 and direct[0] in refs
    assert {(r.framework, r.seed) for r in refs} == {(f, s) for f in ("torch", "tf")
                                                     for s in range(10)}
    for r in refs:
        assert r.unit == "nmu" and r.params["simplification"] == "solved-accumulator"
        assert r.params["thresholds"] == "none" and (r.steps, r.budget) == (2, "smoke")
    for s in specs:
        assert {r.framework for r in staged.references[s.id]} == {s.framework}
        assert len(staged.references[s.id]) == 10
    assert direct[0].id not in staged.references
    static = suite.expand(["static_arithmetic"], ["nau"], ["torch"], [0], budget, {})
    assert suite.stages(static).runs == (tuple(static),) and not suite.stages(static).references


@pytest.mark.parametrize("executor", ["local", "processes", pytest.param("dask", marks=[
    pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                       reason="dask.distributed is not installed (the dask extra)")])])
def test_references_finish_before_the_runs_they_score_start(tmp_path, stand_in, executor,
                                                             capsys):
    results = tmp_path / "r"
    assert cli.main([*ARGS, "--results", str(results), "--executor", executor]) == 0
    out = capsys.readouterr().out
    assert "14 runs, 0 already done, 14 to train" in out
    assert "stage 1/2 (with the references): 10 runs, 0 already done, 10 to train" in out
    assert "stage 2/2: 4 runs (4 ok); 4 scored against their references, 0 not" in out
    refs, runs = _records(results)
    assert len(refs) == 10 and len(runs) == 4
    ref_ids = {r["id"] for r in refs}
    events = _events(stand_in)
    ref_ends = [t for w, t, ids in events if w == "end" and ids <= ref_ids]
    run_starts = [t for w, t, ids in events if w == "start" and not ids & ref_ids]
    assert len(ref_ends) == 4 and len(run_starts) == 2  # programs of up to 3 runs
    assert max(ref_ends) < min(run_starts)
    assert all(r["metrics"]["scored"] is False and "references_ok" not in r["metrics"]
               for r in refs)
    _check_scored(refs, runs)
    # a rerun trains nothing
    assert cli.main([*ARGS, "--results", str(results), "--executor", executor]) == 0
    assert "14 runs, 14 already done, 0 to train" in capsys.readouterr().out
    assert len(_events(stand_in)) == len(events)


def test_failed_references_leave_runs_unscored_until_a_rerun(tmp_path, stand_in,
                                                             monkeypatch, capsys):
    results = tmp_path / "r"
    monkeypatch.setenv(FAIL, "4")  # the program of seeds 3-5
    assert cli.main([*ARGS, "--results", str(results)]) == 1
    captured = capsys.readouterr()
    assert "3 run(s) ended in error" in captured.err
    assert "4 run(s) not scored (their reference runs had not all finished)" in captured.err
    assert "4 scored against their references" not in captured.out
    refs, runs = _records(results)
    assert sorted(r["seed"] for r in refs if r["status"] == "error") == [3, 4, 5]
    assert len(runs) == 4  # still trained and recorded
    for r in runs:
        assert r["status"] == "ok" and r["metrics"]["references_ok"] is False
        assert r["metrics"]["scored"] is False and r["metrics"]["success"] is False
        assert r["metrics"]["threshold_1"] is None
        assert r["reason"].startswith("not scored: 3 of 10 reference runs did not finish")
        assert "seed 3 error (RuntimeError: reference run failed)" in r["reason"]
    monkeypatch.delenv(FAIL)
    assert cli.main([*ARGS, "--results", str(results)]) == 0
    assert "14 runs, 7 already done, 7 to train" in capsys.readouterr().out
    refs, runs = _records(results)
    assert all(r["status"] == "ok" for r in refs)
    _check_scored(refs, runs)


def test_interrupted_references_resume_and_only_then_the_runs_train(tmp_path, stand_in,
                                                                     monkeypatch, capsys):
    results = tmp_path / "r"
    calls = []

    def stopped_at_second_group(work, progress=None, checkpoints=None):
        calls.append(work)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return _work_with_stand_in(work, progress, checkpoints)

    monkeypatch.setattr(runner, "run_work", stopped_at_second_group)
    assert cli.main([*ARGS, "--results", str(results)]) == 130
    assert "interrupted: 3 records written" in capsys.readouterr().err
    refs, runs = _records(results)
    assert len(refs) == 3 and not runs
    assert all(w.references is None for w in calls)  # no run of the second stage started
    monkeypatch.setattr(runner, "run_work", _work_with_stand_in)
    assert cli.main([*ARGS, "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "14 runs, 3 already done, 11 to train" in out
    assert "stage 1/2 (with the references): 10 runs, 3 already done, 7 to train" in out
    refs, runs = _records(results)
    assert len(refs) == 10
    _check_scored(refs, runs)


def test_one_run_trains_the_references_then_scores_against_them(tmp_path, monkeypatch,
                                                                 capsys):
    monkeypatch.delenv("ARITHBENCH_MNIST", raising=False)
    results = tmp_path / "r"
    args = [*ARGS, "--units", "nmu", "--seeds", "0", "--max-replicas", "16"]
    code = cli.main([*args, "--results", str(results)])
    refs, runs = _records(results)
    assert len(refs) == 10 and len(runs) == 1, capsys.readouterr()
    assert not [r for r in refs if r["status"] == "error"], refs[0]["reason"]
    ok = [r for r in refs if r["status"] == "ok"]
    m = runs[0]["metrics"]
    # selected on the validation sequences, which the curve records first
    assert list(runs[0]["curve"])[:2] == ["step", "validation"]
    if len(ok) >= 2:  # a reference run may diverge in 2 steps: the others make the bar
        assert code == 0 and m["references_ok"] is True and m["reference_runs"] == len(ok)
        bar = thresholds([[r["metrics"]["mse_1"], r["metrics"]["mse_2"]] for r in ok])
        np.testing.assert_allclose([m["threshold_1"], m["threshold_2"]], bar, rtol=1e-12)
    else:
        assert code == 1 and m["references_ok"] is False and m["scored"] is False
