"""Checkpoints: a program stopped at a random chunk of steps and resumed from its checkpoint
writes the records of an uninterrupted run, bit for bit, in every task whose seeds train
as one program and in both frameworks; a checkpoint that is not the program's is set aside."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from benchmarks import runner, suite
from models import checkpoint, registry

TINY = suite.Budget("tiny", steps=120, eval_interval=20, seeds=2, description="tests")

# (task, model, task parameters): each task that trains its seeds as one program, plus the
# two re-initialisation rules whose state a checkpoint carries
CASES = {
    "static": ("static_arithmetic", "nau", {"op": ["add", "mul"], "input_size": [10],
                                            "eval_size": [200]}),
    "static-primer-reinit": ("static_arithmetic", "inalu",
                             {"op": ["add"], "protocol": ["primer"], "input_size": [2],
                              "eval_size": [200]}),
    "static-reinit": ("static_arithmetic", "inalu", {"op": ["mul"], "reinit": ["on"],
                                                     "input_size": [10], "eval_size": [200]}),
    "recurrent": ("recurrent_arithmetic", "lstm-linear", {"eval_size": [50],
                                                          "test_lengths": [[20]]}),
    "text": ("text_to_number", "nalu", {}),
    "digits": ("mnist_counting", "nau", {"test_sequences": [50]}),
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


@pytest.mark.parametrize("case", list(CASES))
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
    assert progress_calls < len(calls), "the resumed run reports the steps done before at once"


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
