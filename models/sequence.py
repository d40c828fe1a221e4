"""The framework-free loop of the sequence tasks: schedule, evaluation per length,
model selection on the interpolation set, divergence per replica.

A model is a recurrent cell followed by a feed-forward output unit on its last hidden
state. A framework supplies ``models/<fw>/sequence.Trainer(cell, out, lr, device,
length)`` with ``train(xs, ys, lams)`` (len(xs) optimiser steps on (T, R or 1, B, L,
n_in) sequences), ``errors(x, y, chunk)`` (per-replica MSE of a shared set (N, L, n_in),
run ``chunk`` sequences at a time, one time step after another, so a length-1000 set
needs no more memory than a short one) and ``params()`` ([cell, output] parameters).

The loop is `models.engine.fit` with one rule of its own: a replica is *diverged* only
when its interpolation error (the training distribution) is non-finite (or never, where
the task's ``watch`` is empty, as under recurrent arithmetic's protocol mclstm). An output that
overflows on a 1000-step sequence is a failure to extrapolate, recorded as an infinite
error at that length, not a divergence.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from models import engine, reference, registry
from tasks.base import INIT_STREAM, ReplicaBatches


def schedule_units(cell: str, out: str) -> list[str]:
    """The units whose regulariser schedules apply to (cell, output): an arithmetic cell
    follows its unit's; a classic cell has none ("linear" stands for no schedule)."""
    return [reference.CELLS[cell].unit or "linear", out]


def eval_chunk(n_in: int, longest: int, state: int, replicas: int, budget_bytes: int) -> int:
    """Sequences per forward pass: the input chunk and every replica's state fit the budget."""
    per_sequence = 4 * (longest * n_in + 4 * replicas * state)
    return int(min(2000, max(16, budget_bytes // per_sequence)))


def run_group(task, specs, progress=None) -> tuple[list[dict], float]:
    """The loop of the recurrent tasks: one result per spec (see `benchmarks.runner`).

    The task gives ``parse(model) -> (cell, unit)``, ``layers((cell, unit))``,
    ``eval_targets(instance, x)`` besides the usual Task methods, and may give ``watch``
    (the sets whose non-finite error is a divergence; default the interpolation set) and
    ``regulariser_weights(units, cfg, steps)`` (None, or without it: the units' own
    schedules)."""
    first = specs[0]
    model = task.parse(first.unit)  # (cell, output unit)
    (cell, n_in, hidden), (out, _, n_out) = task.layers(model)
    seeds = [s.seed for s in specs]
    instances = [task.instance(s) for s in seeds]
    cell_params = registry.init_cell_params(cell, n_in, hidden,
                                            [[s, INIT_STREAM, 0] for s in seeds],
                                            **dict(reference.CELLS[cell].sequence_options))
    out_params = registry.init_params(out, hidden, n_out, [[s, INIT_STREAM, 1] for s in seeds])
    eval_sets = {name: (x, np.stack([task.eval_targets(inst, x) for inst in instances]))
                 for name, x in task.eval_inputs().items()}
    longest = max(x.shape[-2] for x, _ in eval_sets.values())
    length = task.params["train_length"]
    trainer = registry.framework_module(first.framework, "sequence").Trainer(
        (cell, cell_params), (out, out_params), lr=first.lr, device=first.device, length=length)
    cfg = engine.TrainConfig.of(first)
    cfg = replace(cfg, eval_chunk=eval_chunk(n_in, longest, hidden, len(seeds), cfg.chunk_bytes))
    batches = ReplicaBatches(task, instances, seeds, first.batch_size, first.common_data)
    bytes_per_step = 4 * first.batch_size * (
        length * n_in * (1 if first.common_data else len(seeds)) + n_out * len(seeds))
    units = schedule_units(*model)
    own = getattr(task, "regulariser_weights", lambda *_: None)

    def lams(steps):
        out = own(units, cfg, steps)
        return engine.regulariser_weights(units, cfg, steps) if out is None else out

    result = engine.fit(
        trainer, list(model), lambda n: dict(zip(("xs", "ys"), batches(n))),
        lambda: {name: trainer.errors(*data, chunk=cfg.eval_chunk)
                 for name, data in eval_sets.items()},
        cfg, len(seeds), lams=lams,
        chunk=engine.chunk_steps(cfg, bytes_per_step),
        watch=getattr(task, "watch", (next(iter(eval_sets)),)),
        progress=progress, streams=batches.rngs)
    metrics = lambda r: task.metrics(result.seed(  # noqa: E731
        r, instance=instances[r],
        eval_sets={name: (x, y[r]) for name, (x, y) in eval_sets.items()}))
    return engine.results(result, metrics, what="interpolation error"), result.train_seconds
