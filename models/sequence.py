"""The framework-free loop of the sequence tasks: schedule, evaluation per length,
model selection on the interpolation set, divergence per replica.

A model is a recurrent cell followed by a feed-forward output unit on its last hidden
state. A framework supplies ``models/<fw>/sequence.Trainer(cell, out, lr, device,
length)`` with ``train(xs, ys, lams)`` (len(xs) optimiser steps on (T, R or 1, B, L,
n_in) sequences), ``errors(x, y, chunk)`` (per-replica MSE of a shared set (N, L, n_in),
run ``chunk`` sequences at a time, one time step after another, so a length-1000 set
needs no more memory than a short one) and ``params()`` ([cell, output] parameters).

It differs from `models.supervised.fit` in one rule: a replica is *diverged* only when
its interpolation error (the training distribution) is non-finite. An output that
overflows on a 1000-step sequence is a failure to extrapolate, recorded as an infinite
error at that length, not a divergence.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from models import reference, registry
from models.supervised import Fit, TrainConfig, regulariser_weights
from tasks.base import INIT_STREAM, ReplicaBatches


def schedule_units(cell: str, out: str) -> list[str]:
    """The units whose regulariser schedules apply to (cell, output): an arithmetic cell
    follows its unit's; a classic cell has none ("linear" stands for no schedule)."""
    return [reference.CELLS[cell].unit or "linear", out]


def fit(trainer, model: tuple[str, str], batches: Callable, eval_sets: dict, cfg: TrainConfig,
        replicas: int, bytes_per_step: int, progress: Callable[[int], None] | None = None) -> Fit:
    """Train, evaluating every ``eval_interval`` steps on every fixed set (the first one,
    interpolation, selects the model and decides divergence)."""
    eval_steps = np.unique(np.r_[np.arange(0, cfg.steps, cfg.eval_interval), cfg.steps])
    names = list(eval_sets)
    errors = {n: np.full((replicas, len(eval_steps)), np.nan) for n in names}
    best_err = np.full(replicas, np.inf)
    best_index = np.zeros(replicas, dtype=int)
    best_params = trainer.params()
    diverged_at = np.full(replicas, -1)

    def evaluate(e: int) -> None:
        for name in names:
            errors[name][:, e] = trainer.errors(*eval_sets[name], chunk=cfg.eval_chunk)
        sel = errors[names[0]][:, e]
        diverged_at[~np.isfinite(sel) & (diverged_at < 0)] = eval_steps[e]
        improved = np.isfinite(sel) & (sel < best_err) & (diverged_at < 0)
        if improved.any():
            best_err[improved] = sel[improved]
            best_index[improved] = e
            for layer_best, layer_now in zip(best_params, trainer.params()):
                for k in layer_best:
                    layer_best[k][improved] = layer_now[k][improved]

    chunk = max(1, min(cfg.eval_interval, cfg.chunk_bytes // max(bytes_per_step, 1)))
    plan, step = [], 0  # (first step, steps, index of the evaluation that follows or -1)
    for e, target_step in enumerate(eval_steps):
        while step < target_step:
            n = min(chunk, target_step - step)
            plan.append((step, n, e if step + n == target_step else -1))
            step += n
    units = schedule_units(*model)
    start = time.perf_counter()
    evaluate(0)
    # the next chunk's data is drawn on a second thread while this one trains
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(batches, plan[0][1]) if plan else None
        for i, (first, n, e) in enumerate(plan):
            xs, ys = pending.result()
            if i + 1 < len(plan):
                pending = pool.submit(batches, plan[i + 1][1])
            trainer.train(xs, ys, regulariser_weights(units, cfg,
                                                      np.arange(first + 1, first + n + 1)))
            if progress:
                progress(n)
            if e >= 0:
                evaluate(e)
    return Fit(list(model), eval_steps, errors, best_index, best_params, diverged_at,
               train_seconds=time.perf_counter() - start)


def eval_chunk(n_in: int, longest: int, state: int, replicas: int, budget_bytes: int) -> int:
    """Sequences per forward pass: the input chunk and every replica's state fit the budget."""
    per_sequence = 4 * (longest * n_in + 4 * replicas * state)
    return int(min(2000, max(16, budget_bytes // per_sequence)))


def run_group(task, specs, progress=None) -> tuple[list[dict], float]:
    """The loop of the recurrent tasks: one result per spec (see `benchmarks.runner`).

    The task gives ``parse(model) -> (cell, unit)``, ``layers((cell, unit))``,
    ``eval_targets(instance, x)`` besides the usual Task methods."""
    first = specs[0]
    model = task.parse(first.unit)  # (cell, output unit)
    (cell, n_in, hidden), (out, _, n_out) = task.layers(model)
    seeds = [s.seed for s in specs]
    instances = [task.instance(s) for s in seeds]
    cell_params = registry.init_cell_params(cell, n_in, hidden,
                                            [[s, INIT_STREAM, 0] for s in seeds])
    out_params = registry.init_params(out, hidden, n_out, [[s, INIT_STREAM, 1] for s in seeds])
    eval_sets = {name: (x, np.stack([task.eval_targets(inst, x) for inst in instances]))
                 for name, x in task.eval_inputs().items()}
    longest = max(x.shape[-2] for x, _ in eval_sets.values())
    length = task.params["train_length"]
    trainer = registry.framework_module(first.framework, "sequence").Trainer(
        (cell, cell_params), (out, out_params), lr=first.lr, device=first.device, length=length)
    cfg = TrainConfig(steps=first.steps, batch_size=first.batch_size, lr=first.lr,
                      eval_interval=first.eval_interval, schedule_scale=first.schedule_scale)
    cfg = TrainConfig(**{**cfg.__dict__, "eval_chunk": eval_chunk(
        n_in, longest, hidden, len(seeds), cfg.chunk_bytes)})
    batches = ReplicaBatches(task, instances, seeds, first.batch_size, first.common_data)
    bytes_per_step = 4 * first.batch_size * (
        length * n_in * (1 if first.common_data else len(seeds)) + n_out * len(seeds))
    tick = (lambda n: progress(n * len(seeds))) if progress else None
    result = fit(trainer, model, batches, eval_sets, cfg, len(seeds), bytes_per_step,
                 progress=tick)
    out_records = []
    for r in range(len(specs)):
        diverged = result.diverged_at[r] >= 0
        out_records.append({
            "status": "diverged" if diverged else "ok",
            "reason": (f"non-finite interpolation error at step {result.diverged_at[r]}"
                       if diverged else ""),
            "metrics": task.metrics(result, r, instances[r], eval_sets),
            "curve": {"step": result.steps.tolist(),
                      **{name: result.errors[name][r].tolist() for name in result.errors}},
        })
    return out_records, result.train_seconds
