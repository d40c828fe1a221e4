"""RunSpec group -> RunRecords: the seeds of one configuration train as one program.

The task names its loop (``Task.loop``, a module of models/); the loop's
``run_group(task, specs, progress)`` returns, per spec, a dict with ``status``
(ok or diverged), ``reason``, ``metrics`` and ``curve`` (``step`` and one list
per evaluated quantity), and the seconds spent training (`models.engine.results`
builds them). ``progress(n)`` is called with seed-steps done. The record around
them is `benchmarks.records.build`'s.
"""
from __future__ import annotations

import importlib
import sys
import time
import traceback
from typing import NamedTuple

import tasks
from benchmarks import records
from benchmarks.records import RunSpec
from models import checkpoint, registry


class Work(NamedTuple):
    """What an executor hands a worker: a group and, for runs scored against others
    (`Task.references`), the records of those runs (None: the task has none)."""

    specs: list[RunSpec]
    references: tuple[dict, ...] | None = None


def run_work(work: Work, progress=None, checkpoints: checkpoint.Plan | None = None
             ) -> list[dict]:
    """`run_group` of a `Work`: the function the CLI maps over its executor."""
    extra = {} if work.references is None else {"references": work.references}
    return run_group(work.specs, progress, checkpoints=checkpoints, **extra)


def reference_view(record: dict) -> dict:
    """What a run scored against ``record`` is handed of it: no curve, no environment."""
    return {k: record.get(k) for k in ("id", "unit", "framework", "seed", "task_params",
                                       "status", "reason", "metrics")}


def run_group(specs: list[RunSpec], progress=None,
              checkpoints: checkpoint.Plan | None = None,
              references: tuple[dict, ...] | None = None) -> list[dict]:
    """Train every spec of one group (equal but for the seed) together; one record each.

    ``references``: the records of the runs this group is scored against (its task's
    `Task.references`; status ``missing`` for one without a record), handed to the task
    before training (`Task.use_references`). Where the task cannot use them, the runs
    still train, and each record says why they are not scored (``reason``) and has the
    metric ``references_ok`` false; the CLI exits 1 and retrains them once their
    references are complete.

    Never raises for a failed run: a missing framework gives ``skipped`` records, an
    exception gives ``error`` records with the reason, NaN gives ``diverged``. A stop
    request (`models.checkpoint.request_stop`) raises `models.checkpoint.Interrupted`
    once the group's programs have saved their checkpoints under ``checkpoints``; run
    again with the same plan, the group continues from them.
    """
    first = specs[0]
    missing = registry.framework_missing(first.framework)
    if missing:
        return [records.build(s, "skipped", missing) for s in specs]
    started = time.perf_counter()
    try:
        with checkpoint.active(checkpoints, [s.id for s in specs]):
            return _train(specs, progress, started, references)
    except KeyboardInterrupt:
        raise
    except Exception as err:  # a failed run is data, not a crash of the sweep
        reason = f"{type(err).__name__}: {err}"
        tb = traceback.format_exc(limit=8)
        return [records.build(s, "error", reason, traceback=tb,
                              wall_seconds=time.perf_counter() - started) for s in specs]


def _train(specs: list[RunSpec], progress, started: float, references) -> list[dict]:
    first = specs[0]
    task = tasks.get(first.task)(**first.params)
    unscored = None if references is None else task.use_references(list(references))
    results, train_seconds = importlib.import_module(task.loop).run_group(task, specs, progress)
    wall = time.perf_counter() - started
    throughput = first.steps * len(specs) / max(train_seconds, 1e-9)
    if unscored is not None:
        results = [_scored(res, unscored) for res in results]
    return [records.build(spec, res["status"], res.get("reason", ""),
                          metrics=res.get("metrics", {}), curve=res.get("curve", {}),
                          group_size=len(specs), train_seconds=train_seconds,
                          wall_seconds=wall, seed_steps_per_s=throughput,
                          samples_per_s=throughput * spec.batch_size,
                          python=sys.version.split()[0])
            for spec, res in zip(specs, results, strict=True)]


def _scored(result: dict, unscored: str) -> dict:
    """A finished run's result with ``references_ok`` and, where its references could not
    be used, why it is not scored appended to its reason."""
    if result["status"] not in records.FINAL:
        return result
    reason = "; ".join(r for r in (result.get("reason", ""), unscored) if r)
    metrics = {**result.get("metrics", {}), "references_ok": not unscored}
    return {**result, "reason": reason, "metrics": metrics}
