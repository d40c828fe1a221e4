"""RunSpec group -> RunRecords: the seeds of one configuration train as one program."""
from __future__ import annotations

import os
import platform
import sys
import time
import traceback
from dataclasses import replace
from importlib import metadata

import numpy as np

import tasks
from benchmarks.spec import RunSpec
from models import registry, supervised
from tasks.base import INIT_STREAM, ReplicaBatches

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


def eval_chunk(layers, replicas: int, budget_bytes: int) -> int:
    """Evaluation samples per forward pass so the widest activation stays in budget
    (NMU's product makes an (R, N, n_in, n_out) intermediate)."""
    widest = max(n_in * n_out if unit == "nmu" else n_in + n_out for unit, n_in, n_out in layers)
    return int(min(2000, max(64, budget_bytes // (4 * replicas * widest))))


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
    layers = task.layers(registry.parse_model(first.unit))
    seeds = [s.seed for s in specs]
    instances = [task.instance(s) for s in seeds]
    init = [(unit, registry.init_params(unit, n_in, n_out, [[s, INIT_STREAM, j] for s in seeds]))
            for j, (unit, n_in, n_out) in enumerate(layers)]
    eval_sets = {name: (x, np.stack([task.targets(inst, x.astype(np.float64))
                                     for inst in instances]))
                 for name, x in task.eval_inputs().items()}
    trainer = registry.framework_module(first.framework, "train").Trainer(
        init, lr=first.lr, device=first.device)
    cfg = supervised.TrainConfig(steps=first.steps, batch_size=first.batch_size, lr=first.lr,
                                 eval_interval=first.eval_interval,
                                 schedule_scale=first.schedule_scale)
    cfg = replace(cfg, eval_chunk=eval_chunk(layers, len(seeds), cfg.chunk_bytes))
    batches = ReplicaBatches(task, instances, seeds, first.batch_size, first.common_data)
    n_in, n_out = layers[0][1], layers[-1][2]
    bytes_per_step = 4 * first.batch_size * (n_in * (1 if first.common_data else len(seeds))
                                             + n_out * len(seeds))
    tick = (lambda n: progress(n * len(seeds))) if progress else None
    fit = supervised.fit(trainer, [u for u, _, _ in layers], batches, eval_sets, cfg,
                         len(seeds), bytes_per_step, progress=tick)
    wall = time.perf_counter() - started
    throughput = first.steps * len(seeds) / max(fit.train_seconds, 1e-9)
    records = []
    for r, spec in enumerate(specs):
        metrics = task.metrics(fit, r, instances[r], eval_sets)
        diverged = fit.diverged_at[r] >= 0
        curve = {"step": fit.steps.tolist(),
                 **{name: fit.errors[name][r].tolist() for name in fit.errors}}
        records.append(_record(
            spec, "diverged" if diverged else "ok",
            f"non-finite error at step {fit.diverged_at[r]}" if diverged else "",
            metrics=metrics, curve=curve, group_size=len(specs),
            train_seconds=fit.train_seconds, wall_seconds=wall,
            seed_steps_per_s=throughput, samples_per_s=throughput * spec.batch_size,
            python=sys.version.split()[0]))
    return records
