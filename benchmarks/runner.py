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

import tasks
from benchmarks import records
from benchmarks.records import RunSpec
from models import checkpoint, registry


def run_group(specs: list[RunSpec], progress=None,
              checkpoints: checkpoint.Plan | None = None) -> list[dict]:
    """Train every spec of one group (equal but for the seed) together; one record each.

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
            return _train(specs, progress, started)
    except KeyboardInterrupt:
        raise
    except Exception as err:  # a failed run is data, not a crash of the sweep
        reason = f"{type(err).__name__}: {err}"
        tb = traceback.format_exc(limit=8)
        return [records.build(s, "error", reason, traceback=tb,
                              wall_seconds=time.perf_counter() - started) for s in specs]


def _train(specs: list[RunSpec], progress, started: float) -> list[dict]:
    first = specs[0]
    task = tasks.get(first.task)(**first.params)
    results, train_seconds = importlib.import_module(task.loop).run_group(task, specs, progress)
    wall = time.perf_counter() - started
    throughput = first.steps * len(specs) / max(train_seconds, 1e-9)
    return [records.build(spec, res["status"], res.get("reason", ""),
                          metrics=res.get("metrics", {}), curve=res.get("curve", {}),
                          group_size=len(specs), train_seconds=train_seconds,
                          wall_seconds=wall, seed_steps_per_s=throughput,
                          samples_per_s=throughput * spec.batch_size,
                          python=sys.version.split()[0])
            for spec, res in zip(specs, results, strict=True)]
