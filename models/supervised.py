"""The framework-free supervised loop: schedule, evaluation, model selection, divergence.

A framework supplies a trainer with three methods (see `models/torch/train.py`):
``train(xs, ys, lams)`` runs len(xs) optimiser steps (an optional ``prepare(xs, ys)``
returns its keyword arguments, made on the data thread), ``errors(x, y)`` gives the
per-replica MSE, ``params()`` the per-layer parameters, and, for the optional
re-initialisation of stalled replicas (`Reinit`), ``reinit(mask, layers)``. Everything
else - when to evaluate, which step is selected, which replica diverged or stalled - is
decided here once, so both frameworks follow the same protocol.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from models import reference, registry
from tasks.base import INIT_STREAM, ReplicaBatches


@dataclass(frozen=True)
class Reinit:
    """[iNALU]'s re-initialisation of a run whose loss stalls, counted in evaluations.

    [iNALU] (Schloer, Ring, Hotho 2020) re-initialises the weights of a run whose loss,
    checked every t epochs, has not improved over the last ones while it is still above a
    threshold (our reading of the paper; its exact averaging and values were not checked
    against its code). Here, per replica, at every ``window``-th evaluation since its last
    (re)initialisation: with ``recent`` and ``older`` the means of the interpolation MSE
    over the last window/2 evaluations and the window/2 before, the replica is stalled when
    ``recent > factor * older`` and ``recent > level``. A stalled replica gets fresh weights
    in every layer whose unit opts in (`UnitSpec.reinit`), drawn from
    ``default_rng([seed, INIT_STREAM, layer, attempt])`` (attempt 1, 2, ...; the first
    initialisation is attempt 0, ``[seed, INIT_STREAM, layer]``), and zero Adam moments.
    A replica with a non-finite error is recorded as diverged, not re-initialised, and
    nothing is re-initialised at the last evaluation (no training follows). Model
    selection (the best interpolation error) spans every attempt. Adam's step count is one
    per parameter tensor, shared by the replicas, so it goes on: a re-initialised replica's
    bias correction is that of the running step, not of a fresh optimiser (its first
    updates are about (1 - beta1) / sqrt(1 - beta2) = 0.1 / 0.032, i.e. 3 lr, not lr).
    """

    window: int = 10  # evaluations per check ([iNALU] counts epochs; 10 is our choice)
    factor: float = 1.0  # stalled unless the recent mean is below factor * older mean
    level: float = 1.0  # ... and only while the recent mean MSE is above this (our choice)

    def __post_init__(self):
        if int(self.window) != self.window or self.window < 2 or self.window % 2:
            raise ValueError(f"Reinit window {self.window!r} must be an even integer >= 2")
        if not (self.factor >= 0 and self.level >= 0):
            raise ValueError(f"Reinit factor {self.factor!r} and level {self.level!r} "
                             f"must be >= 0")


def stalled(err: np.ndarray, e: int, since: np.ndarray, rule: Reinit) -> np.ndarray:
    """(R,) bool: replicas that `rule` re-initialises at evaluation ``e``, given their
    errors ``err`` (R, E) and the evaluation of their last (re)initialisation ``since``."""
    half = rule.window // 2
    due = (e - since >= rule.window) & ((e - since) % rule.window == 0)
    if not due.any():  # a due replica has window evaluations after its (re)initialisation
        return due
    with np.errstate(invalid="ignore"):
        older = err[:, e - rule.window + 1:e - half + 1].mean(axis=1)
        recent = err[:, e - half + 1:e + 1].mean(axis=1)
        return due & np.isfinite(recent) & np.isfinite(older) \
            & (recent > rule.factor * older) & (recent > rule.level)


FIRST_CHUNK_DIVISOR = 16  # the first chunk is this much shorter than the others


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    batch_size: int = 128
    lr: float = 1e-3
    eval_interval: int = 1000
    schedule_scale: float = 1.0  # regulariser schedules are given in paper steps
    chunk_bytes: int = 32 << 20  # most input data generated at once
    eval_chunk: int = 2000  # samples evaluated at once (bounded memory for many replicas)
    reinit: Reinit | None = None  # re-initialise stalled replicas (off: the default)


@dataclass
class Fit:
    """What training R replicas produced; arrays are per replica along axis 0."""

    units: list[str]  # one per layer
    steps: np.ndarray  # (E,) evaluated steps, 0 (untrained) first
    errors: dict[str, np.ndarray]  # eval set -> (R, E) mean squared error
    best_index: np.ndarray  # (R,) index into steps selected by the first eval set
    best_params: list[dict[str, np.ndarray]]  # per layer, (R, ...) at best_index
    diverged_at: np.ndarray  # (R,) first evaluated step with a non-finite error, or -1
    train_seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def regulariser_weights(units: list[str], cfg: TrainConfig, steps: np.ndarray) -> np.ndarray:
    """(T, n_layers) lambda per step: a linear ramp 0 -> lambda_hat from start to end."""
    out = np.zeros((len(steps), len(units)), dtype=np.float32)
    for j, unit in enumerate(units):
        schedule = reference.UNITS[unit].schedule
        if schedule is None:
            continue
        lam_hat, start, end = schedule
        start, end = start * cfg.schedule_scale, end * cfg.schedule_scale
        ramp = np.clip((steps - start) / max(end - start, 1e-12), 0.0, 1.0)
        out[:, j] = lam_hat * ramp
    return out


def fit(trainer, units: list[str], batches: Callable[[int], tuple[np.ndarray, np.ndarray]],
        eval_sets: dict[str, tuple[np.ndarray, np.ndarray]], cfg: TrainConfig,
        replicas: int, bytes_per_step: int, progress: Callable[[int], None] | None = None,
        fresh: Callable[[np.ndarray, np.ndarray], list[dict | None]] | None = None) -> Fit:
    """Train, evaluating every ``eval_interval`` steps on the fixed sets.

    ``batches(T)`` returns T steps of data shaped (T, R or 1, B, n_in) and
    (T, R, B, n_out). The first eval set selects the model (interpolation), over every
    attempt when ``cfg.reinit`` re-initialises stalled replicas: then
    ``fresh(replicas, attempts)`` gives, per layer, their new parameters (None: the layer
    keeps its weights), and ``extra["reinit_steps"]`` lists per replica the steps at
    which it was re-initialised.
    """
    eval_steps = np.unique(np.r_[np.arange(0, cfg.steps, cfg.eval_interval), cfg.steps])
    names = list(eval_sets)
    errors = {n: np.full((replicas, len(eval_steps)), np.nan) for n in names}
    best_err = np.full(replicas, np.inf)
    best_index = np.zeros(replicas, dtype=int)
    best_params = trainer.params()
    diverged_at = np.full(replicas, -1)
    since = np.zeros(replicas, dtype=int)  # evaluation of each replica's last (re)init
    reinit_steps: list[list[int]] = [[] for _ in range(replicas)]
    if cfg.reinit is not None and fresh is None:
        raise ValueError("cfg.reinit needs fresh(replicas, attempts) to draw new weights")

    def evaluate(e: int) -> None:
        for name in names:
            errors[name][:, e] = trainer.errors(*eval_sets[name], chunk=cfg.eval_chunk)
        bad = ~np.all([np.isfinite(errors[n][:, e]) for n in names], axis=0)
        diverged_at[bad & (diverged_at < 0)] = eval_steps[e]
        sel = errors[names[0]][:, e]
        improved = np.isfinite(sel) & (sel < best_err) & (diverged_at < 0)
        if improved.any():
            best_err[improved] = sel[improved]
            best_index[improved] = e
            for layer_best, layer_now in zip(best_params, trainer.params()):
                for k in layer_best:
                    layer_best[k][improved] = layer_now[k][improved]

    def reinitialise(e: int) -> None:
        mask = stalled(errors[names[0]], e, since, cfg.reinit) & (diverged_at < 0)
        if mask.any():
            which = np.flatnonzero(mask)
            attempts = np.array([len(reinit_steps[r]) + 1 for r in which])
            trainer.reinit(mask, fresh(which, attempts))
            since[mask] = e
            for r in which:
                reinit_steps[r].append(int(eval_steps[e]))

    chunk = max(1, min(cfg.eval_interval, cfg.chunk_bytes // max(bytes_per_step, 1)))
    plan = []  # (first step, steps, index of the evaluation that follows or -1)
    step = 0
    for e, target_step in enumerate(eval_steps):
        while step < target_step:
            # The first chunk is short: nothing trains until it is drawn (a full chunk of
            # 64 seeds' targets with common data takes about 0.3 s), later ones are drawn
            # while the one before trains. Chunking does not change the draws.
            n = min(chunk if plan else -(-chunk // FIRST_CHUNK_DIVISOR), target_step - step)
            plan.append((step, n, e if step + n == target_step else -1))
            step += n
    # A trainer may turn a chunk into what it trains on (tensors, derived inputs) ahead of
    # time, and size a compiled loop for the longest chunk before the first (`reserve`).
    prepare = getattr(trainer, "prepare", lambda xs, ys: {"xs": xs, "ys": ys})
    if plan and hasattr(trainer, "reserve"):
        trainer.reserve(max(n for _, n, _ in plan))
    start = time.perf_counter()
    # Data for the next chunk is made on a second thread while this one trains or
    # evaluates (numpy and both frameworks release the GIL); the order of draws is unchanged.
    with ThreadPoolExecutor(max_workers=1) as pool:
        make = lambda n: prepare(*batches(n))  # noqa: E731
        pending = pool.submit(make, plan[0][1]) if plan else None
        evaluate(0)
        for i, (first, n, e) in enumerate(plan):
            data = pending.result()
            if i + 1 < len(plan):
                pending = pool.submit(make, plan[i + 1][1])
            lams = regulariser_weights(units, cfg, np.arange(first + 1, first + n + 1))
            trainer.train(lams=lams, **data)
            if progress:
                progress(n)
            if e >= 0:
                evaluate(e)
                if cfg.reinit is not None and e < len(eval_steps) - 1:  # none after the last
                    reinitialise(e)
    extra = {"reinit_steps": reinit_steps} if cfg.reinit is not None else {}
    return Fit(units, eval_steps, errors, best_index, best_params, diverged_at,
               train_seconds=time.perf_counter() - start, extra=extra)


def eval_chunk(layers, replicas: int, budget_bytes: int) -> int:
    """Evaluation samples per forward pass so the widest activation stays in budget
    (NMU's product makes an (R, N, n_in, n_out) intermediate)."""
    widest = max(n_in * n_out if unit == "nmu" else n_in + n_out for unit, n_in, n_out in layers)
    return int(min(2000, max(64, budget_bytes // (4 * replicas * widest))))


def run_group(task, specs, progress=None) -> tuple[list[dict], float]:
    """The loop of the feed-forward tasks: one result per spec (see `benchmarks.runner`)."""
    first = specs[0]
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
    cfg = TrainConfig(steps=first.steps, batch_size=first.batch_size, lr=first.lr,
                      eval_interval=first.eval_interval, schedule_scale=first.schedule_scale)
    # the re-initialisation applies to models with a unit that opts in (iNALU)
    rule = getattr(task, "reinit", None)
    opted = any(reference.UNITS[unit].reinit for unit, _, _ in layers)
    cfg = replace(cfg, eval_chunk=eval_chunk(layers, len(seeds), cfg.chunk_bytes),
                  reinit=rule if opted else None)
    batches = ReplicaBatches(task, instances, seeds, first.batch_size, first.common_data)
    n_in, n_out = layers[0][1], layers[-1][2]
    bytes_per_step = 4 * first.batch_size * (n_in * (1 if first.common_data else len(seeds))
                                             + n_out * len(seeds))
    tick = (lambda n: progress(n * len(seeds))) if progress else None

    def fresh(which, attempts):
        """Attempt a's weights of replica r, layer j: rng [seed_r, INIT_STREAM, j, a]."""
        return [registry.init_params(unit, n_in_j, n_out_j, [[seeds[r], INIT_STREAM, j, a]
                                                             for r, a in zip(which, attempts)])
                if reference.UNITS[unit].reinit else None
                for j, (unit, n_in_j, n_out_j) in enumerate(layers)]

    result = fit(trainer, [u for u, _, _ in layers], batches, eval_sets, cfg, len(seeds),
                 bytes_per_step, progress=tick, fresh=fresh)
    out = []
    for r in range(len(specs)):
        diverged = result.diverged_at[r] >= 0
        out.append({
            "status": "diverged" if diverged else "ok",
            "reason": f"non-finite error at step {result.diverged_at[r]}" if diverged else "",
            "metrics": task.metrics(result, r, instances[r], eval_sets),
            "curve": {"step": result.steps.tolist(),
                      **{name: result.errors[name][r].tolist() for name in result.errors}},
        })
    return out, result.train_seconds
