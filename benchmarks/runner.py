"""RunSpec group -> RunRecords: the seeds of one configuration train as one program.

The task names its loop (``Task.loop``, a module of models/); the loop's
``run_group(task, specs, progress)`` returns, per spec, a dict with ``status``
(ok or diverged), ``reason``, ``metrics`` and ``curve`` (``step`` and one list
per evaluated quantity), and the seconds spent training. ``progress(n)`` is
called with seed-steps done. Everything else in a record is added here.
"""
from __future__ import annotations

import importlib
import os
import platform
import sys
import time
import traceback
from importlib import metadata

import numpy as np

import tasks
from benchmarks.spec import RunSpec
from models import registry

_PACKAGES = {"torch": ("torch",), "tf": ("tensorflow", "tensorflow-cpu")}


def _version(names) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def environment(framework: str) -> dict:
    """Library versions and the machine, carried by every record."""
    return {
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     framework: _version(_PACKAGES.get(framework, ()))},
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "cpus": os.cpu_count(), "node": platform.node()},
    }


def _record(spec: RunSpec, status: str, reason: str = "", **fields) -> dict:
    return {"id": spec.id, **spec.to_dict(), "status": status, "reason": reason,
            **environment(spec.framework), **fields}


def run_group(specs: list[RunSpec], progress=None) -> list[dict]:
    """Train every spec of one group (equal but for the seed) together; one record each.

    Never raises for a failed run: a missing framework gives ``skipped`` records, an
    exception gives ``error`` records with the reason, NaN gives ``diverged``.
    """
    first = specs[0]
    missing = registry.framework_missing(first.framework)
    if missing:
        return [_record(s, "skipped", missing) for s in specs]
    started = time.perf_counter()
    try:
        return _train(specs, progress, started)
    except KeyboardInterrupt:
        raise
    except Exception as err:  # a failed run is data, not a crash of the sweep
        reason = f"{type(err).__name__}: {err}"
        tb = traceback.format_exc(limit=8)
        return [_record(s, "error", reason, traceback=tb,
                        wall_seconds=time.perf_counter() - started) for s in specs]


def _train(specs: list[RunSpec], progress, started: float) -> list[dict]:
    first = specs[0]
    task = tasks.get(first.task)(**first.params)
    results, train_seconds = importlib.import_module(task.loop).run_group(task, specs, progress)
    wall = time.perf_counter() - started
    throughput = first.steps * len(specs) / max(train_seconds, 1e-9)
    return [_record(spec, res["status"], res.get("reason", ""), metrics=res.get("metrics", {}),
                    curve=res.get("curve", {}), group_size=len(specs),
                    train_seconds=train_seconds, wall_seconds=wall,
                    seed_steps_per_s=throughput, samples_per_s=throughput * spec.batch_size,
                    python=sys.version.split()[0])
            for spec, res in zip(specs, results, strict=True)]
