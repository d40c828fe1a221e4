"""Property tests (hypothesis): any --param value of any task, any record content.

`run` with one drawn ``--param NAME=VALUE`` exits 2 with one line naming the bad input
and writes nothing, or trains and exits 0: an accepted value never ends in an `error`
record, a traceback or a hang. Memory is bounded by $ARITHBENCH_MEMORY (the estimate
refuses what would exceed it) and time by small evaluation sets and one training step.
A record with any field replaced by any JSON value is either refused with one line or
read into the tables the summary and report use without an exception.
"""
from __future__ import annotations

import json
import math
import os
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from benchmarks import cli
from models import registry
from reports.tests.conftest import MAGNITUDE, record

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import tasks  # noqa: E402

FAST = {  # the cheapest model and evaluation of each task: the drawn value comes last
    "static_arithmetic": ("nau", ["eval_size=50"]),
    "recurrent_arithmetic": ("nau", ["eval_size=20", "test_lengths=20"]),
    "grid_world": ("lstm", ["eval_episodes=2", "test_T=1,12"]),
    "mnist_counting": ("nau", ["test_sequences=10", "test_lengths=20", "source=sklearn"]),
    "mnist_addition": ("nau", ["test_sequences=10", "test_lengths=20", "source=sklearn"]),
    "text_to_number": ("nau", []),
    "sequential_mnist": ("nau", ["source=sklearn", "test_lengths=1,10"]),
}
WORDS = ["", "nau", "on", "off", "true", "false", "none", "auto", "en", "de", "xx", "mnist",
         "sklearn", "1,2", "2,1", "-6,-2+2,6", "1e30,1e38", "1e30,1e39", "0,0", "1,2,3", "a,b",
         "1e308,1e309", "100000", "0", "-1", "1e8", "inf", "nan", "-inf", "4,1,0", "2,8",
         "1,1.00000001", "1+2", ",", "+", "10,100,1000"]
VALUES = st.one_of(
    st.sampled_from(WORDS),
    st.integers(1, 6).map(str),  # small sizes and lengths: values a task accepts and trains
    st.sampled_from(["0.5", "2", "1e-3", "3,7", "1,5", "0.1,0.2", "-2,-1", "1,2+3,4"]),
    st.integers(-10**6, 10**9).map(str),
    st.floats(allow_nan=True, allow_infinity=True, width=64).map(repr),
    st.lists(st.integers(-3, 3000), min_size=1, max_size=3).map(lambda v: ",".join(map(str, v))),
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=2).map(
        lambda v: ",".join(map(repr, v))),
)
PARAMS = st.sampled_from([(t, k) for t, cls in tasks.TASKS.items() for k in cls.parameters])


@contextmanager
def bounded(seconds: int, memory: str):
    """No run may take longer than ``seconds`` (SIGALRM) or plan more than ``memory``."""
    def expired(*_):
        raise TimeoutError(f"no answer within {seconds} s")

    old_env = os.environ.get("ARITHBENCH_MEMORY")
    os.environ["ARITHBENCH_MEMORY"] = memory
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        if old_env is None:
            os.environ.pop("ARITHBENCH_MEMORY", None)
        else:
            os.environ["ARITHBENCH_MEMORY"] = old_env


@pytest.mark.skipif(registry.framework_missing("torch") is not None, reason="needs torch")
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(task_param=PARAMS, value=VALUES)
def test_any_param_value_exit_0_or_2_one_line(capsys, task_param, value):
    task, key = task_param
    model, fast = FAST[task]
    extra = [a for p in fast if not p.startswith(f"{key}=") for a in ("--param", p)]
    with tempfile.TemporaryDirectory() as tmp, bounded(120, "1GB"):
        results = Path(tmp) / "r"
        code = cli.main(["run", "--tasks", task, "--units", model, "--frameworks", "torch",
                         "--budget", "smoke", "--steps", "1", "--seeds", "0", "--quiet",
                         *extra, "--param", f"{key}={value}", "--results", str(results)])
        out, err = capsys.readouterr()
        lines = [line for line in err.splitlines() if line.strip()]
        hypothesis.event(f"exit {code}")
        assert code in (0, 2), (task, key, value, code, err[-2000:])
        if code == 2:
            assert len(lines) == 1 and "error:" in lines[0], lines
            assert not list(results.glob("*.json")) if results.exists() else True
        else:
            statuses = {json.loads(p.read_text())["status"] for p in results.glob("*.json")}
            assert statuses and statuses <= {"ok", "diverged"}, (task, key, value, statuses)


@pytest.mark.parametrize("task", sorted(tasks.TASKS))
def test_every_param_refuses_every_word_with_a_task_error(task):
    """Exhaustive over WORDS where the drawn test samples: each value of each parameter
    builds the task or raises TaskError (the one-line refusal), never another exception."""
    from tasks.base import TaskError

    cls = tasks.TASKS[task]
    crashes = []
    for key in cls.parameters:
        for word in WORDS:
            try:
                params = {**{k: cli._parse_value(v) for k, v in
                             (p.split("=", 1) for p in FAST[task][1]) if k != key},
                          key: cli._parse_value(word)}
                cls(**params)
            except TaskError:
                pass
            except Exception as e:  # noqa: BLE001 - any other exception is the finding
                crashes.append(f"{key}={word!r}: {type(e).__name__}: {e}")
    assert not crashes, crashes


# ---------------------------------------------------------------- records
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=6)
GOOD = record(seed=0, magnitude_curve=MAGNITUDE)
PATHS = ([(k,) for k in GOOD] + [("metrics", k) for k in GOOD["metrics"]]
         + [("curve", k) for k in GOOD["curve"]] + [("task_params", k) for k in GOOD["task_params"]]
         + [("metrics", "magnitude_curve", k) for k in MAGNITUDE] + [("metrics", "new_metric")])


def mutated(path, value, rehash: bool) -> dict:
    rec = json.loads(json.dumps(GOOD, allow_nan=True))
    target = rec
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    if rehash:  # keep the id the hash of the spec, so the field's own check is what speaks
        from benchmarks.records import RunSpec

        try:
            rec["id"] = RunSpec.from_dict(rec).id
        except Exception:  # noqa: BLE001 (an unhashable spec keeps its old id)
            pass
    return rec


def write_pair(directory: Path, rec: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    other = record(seed=1)
    (directory / f"{other['id']}.json").write_text(json.dumps(other))
    name = rec["id"] if isinstance(rec.get("id"), str) and len(rec["id"]) == 20 \
        and all(c in "0123456789abcdef" for c in rec["id"]) else "f" * 20
    path = directory / f"{name}.json"
    path.write_text(json.dumps(rec, allow_nan=True))
    return path


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), value=JSON | st.just(...), rehash=st.booleans())
def test_any_record_content_is_refused_in_one_line_or_read_cleanly(path, value, rehash):
    from benchmarks import schema
    from reports import frame, stats

    rec = mutated(path, value, rehash)
    with tempfile.TemporaryDirectory() as tmp:
        written = write_pair(Path(tmp) / "r", rec)
        problem = None
        try:
            schema.load(written, written.parent)
        except schema.RecordError as err:
            problem = str(err)
        df, curves = frame.read(written.parent)
        if problem is not None:
            assert "\n" not in problem
            assert df.attrs["corrupt"] == [f"{written}: {problem}"]
            assert len(df) == 1
        else:
            assert len(df) == 2 and not df.attrs["corrupt"]
        stats.summary(df)
        stats.status_counts(df)
        assert cli._exit_status(df) in (0, 1)
        finite = curves["mse"].dropna()
        assert all(math.isfinite(v) or math.isinf(v) for v in finite)


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=JSON | st.just(...))
def test_report_command_on_any_record_exit_0_or_1(capsys, path, value):
    rec = mutated(path, value, rehash=True)
    with tempfile.TemporaryDirectory() as tmp:
        written = write_pair(Path(tmp) / "r", rec)
        code = cli.main(["report", str(written.parent), "-o", str(Path(tmp) / "o" / "r.html")])
        out, err = capsys.readouterr()
        assert code in (0, 1) and "report written" in out
        left = [line for line in err.splitlines() if line.startswith("left out:")]
        assert len(left) <= 1 and all(written.name in line for line in left)
        assert (Path(tmp) / "o" / "results.parquet").exists()


@settings(max_examples=200, deadline=None, derandomize=True)
@given(params=st.dictionaries(st.text(max_size=6), JSON, max_size=4), seed=st.integers(0, 2**32))
def test_spec_id_read_back_is_the_runspec_id(params, seed):
    """schema.spec_id_of (no deep copies) hashes exactly as RunSpec.id."""
    from benchmarks import schema
    from benchmarks.records import RunSpec

    rec = {**record(seed=seed), "task_params": params}
    try:
        expected = RunSpec.from_dict(rec).id
    except TypeError:  # a value that cannot be sorted or hashed: both refuse it
        with pytest.raises(TypeError):
            schema.spec_id_of(rec)
        return
    assert schema.spec_id_of(rec) == expected
