"""The training engine: the protocol every framework trainer implements, and the one
framework-free fit loop that drives them.

`fit` owns what every task's training shares: the evaluation schedule, the chunks of steps
and their data drawn ahead on a second thread, model selection on the first evaluated set,
divergence, the optional re-initialisation of stalled replicas ([iNALU]) and the per-seed
results. A task's loop (`models/supervised.py`, `sequence.py`, `text.py`,
`image_sequence.py`) is an adapter: it builds the trainer, says how a chunk of data is drawn
and what an evaluation measures, and turns a replica's share of the fit into its metrics.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from models import checkpoint, primer, reference
from tasks.base import PrimerReinit, Reinit

FIRST_CHUNK_DIVISOR = 16  # the static task's first chunk is this much shorter than the others


@runtime_checkable
class Trainer(Protocol):
    """What `fit` asks of a framework trainer holding R replicas of one network.

    Optional, looked up by `fit`: ``prepare(**chunk) -> dict`` turns a drawn chunk into what
    ``train`` takes (run on the data thread), ``reserve(steps)`` tells a compiled step loop
    the longest chunk before the first, ``reinit(mask, layers, keep_moments=False)`` gives
    the replicas in ``mask`` new parameters and, unless kept, zero Adam moments
    (`Reinit`)."""

    def train(self, *, lams: np.ndarray, **chunk) -> None:
        """len(lams) optimiser steps on one chunk; lams: regulariser weights, (T, layers)
        or per replica (T, R, layers)."""

    def params(self) -> Any:
        """The parameters, numpy arrays with the replica axis first."""


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    batch_size: int = 128
    lr: float = 1e-3
    eval_interval: int = 1000
    schedule_scale: float = 1.0  # regulariser schedules are given in paper steps
    chunk_bytes: int = 32 << 20  # most input data generated at once
    eval_chunk: int = 2000  # samples evaluated at once (bounded memory for many replicas)
    # re-initialise stalled replicas (off: the default): the suite's rule, or [Primer]'s
    reinit: Reinit | PrimerReinit | None = None

    @classmethod
    def of(cls, spec, **overrides) -> TrainConfig:
        """The configuration a RunSpec asks for."""
        return cls(steps=spec.steps, batch_size=spec.batch_size, lr=spec.lr,
                   eval_interval=spec.eval_interval, schedule_scale=spec.schedule_scale,
                   **overrides)


@dataclass
class Fit:
    """What training R replicas produced; arrays are per replica along axis 0."""

    units: list[str]  # one per layer
    steps: np.ndarray  # (E,) scheduled evaluation steps, 0 (untrained) first
    errors: dict[str, np.ndarray]  # evaluated quantity -> (R, E); NaN where not evaluated
    best_index: np.ndarray  # (R,) index into steps selected by the first quantity
    best: Any  # what `keep` gave at each replica's selected evaluation (replica axis first)
    diverged_at: np.ndarray  # (R,) first evaluated step with a watched non-finite error, or -1
    evaluated: int = 0  # evaluations done (fewer than len(steps) when training stopped early)
    train_seconds: float = 0.0  # the whole loop, evaluations included
    step_seconds: float = 0.0  # in the trainer's train() only
    extra: dict = field(default_factory=dict)

    def seed(self, r: int, **context) -> SeedFit:
        """Replica r's share, what a task's ``metrics`` reads."""
        return SeedFit(units=self.units, steps=self.steps[:self.evaluated],
                       errors={k: v[r, :self.evaluated] for k, v in self.errors.items()},
                       best_index=int(self.best_index[r]), best=take(self.best, r),
                       diverged_at=int(self.diverged_at[r]),
                       extra={k: v[r] for k, v in self.extra.items()}, **context)


@dataclass
class SeedFit:
    """One replica's fit: its curves, selected evaluation and what was kept there.
    ``instance`` and ``eval_sets`` (name -> (x, this replica's targets)) are the task's, where
    its metrics need them."""

    units: list[str]
    steps: np.ndarray  # (E,)
    errors: dict[str, np.ndarray]  # name -> (E,)
    best_index: int
    best: Any
    diverged_at: int
    extra: dict = field(default_factory=dict)
    instance: Any = None
    eval_sets: dict | None = None

    @property
    def diverged(self) -> bool:
        return self.diverged_at >= 0

    @property
    def selected_step(self) -> int:
        return int(self.steps[self.best_index])


def take(tree, r: int):
    """Row r of every array in a nest of lists and dicts."""
    if isinstance(tree, dict):
        return {k: take(v, r) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [take(v, r) for v in tree]
    return None if tree is None else tree[r]


def _copy_rows(dst, src, rows: np.ndarray) -> None:
    if isinstance(dst, dict):
        for k in dst:
            _copy_rows(dst[k], src[k], rows)
    elif isinstance(dst, (list, tuple)):
        for d, s in zip(dst, src, strict=True):
            _copy_rows(d, s, rows)
    elif dst is not None:
        dst[rows] = src[rows]


def evaluation_steps(steps: int, interval: int) -> np.ndarray:
    """0, interval, 2 interval, ... and the last step: when a run is evaluated."""
    return np.unique(np.r_[np.arange(0, steps, interval), steps])


def regulariser_weights(units: Iterable[str | None], cfg: TrainConfig,
                        steps: np.ndarray) -> np.ndarray:
    """(T, layers) lambda per step: each unit's linear ramp 0 -> lambda_hat from its
    schedule's start to end (in paper steps, scaled by ``cfg.schedule_scale``); 0 for a
    layer without a schedule (None: a layer that is not a unit)."""
    units = list(units)
    out = np.zeros((len(steps), len(units)), dtype=np.float32)
    for j, unit in enumerate(units):
        schedule = reference.UNITS[unit].schedule if unit else None
        if schedule is None:
            continue
        lam_hat, start, end = schedule
        start, end = start * cfg.schedule_scale, end * cfg.schedule_scale
        ramp = np.clip((steps - start) / max(end - start, 1e-12), 0.0, 1.0)
        out[:, j] = lam_hat * ramp
    return out


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


def chunk_steps(cfg: TrainConfig, bytes_per_step: int) -> int:
    """Steps per chunk: at most an evaluation interval, at most ``chunk_bytes`` of input."""
    return max(1, min(cfg.eval_interval, cfg.chunk_bytes // max(bytes_per_step, 1)))


def plan(eval_steps: np.ndarray, chunk: int, first_divisor: int = 1) -> list[tuple[int, int, int]]:
    """(first step, steps, index of the evaluation that follows or -1) per chunk. The first
    chunk is ``first_divisor`` times shorter: nothing trains until it is drawn, later ones
    are drawn while the one before trains. Chunking does not change the draws."""
    out, step = [], 0
    for e, target in enumerate(eval_steps):
        while step < target:
            n = min(chunk if out else -(-chunk // first_divisor), int(target) - step)
            out.append((step, n, e if step + n == target else -1))
            step += n
    return out


@dataclass
class FitState:
    """Everything `fit` carries from one chunk of steps to the next besides the trainer's
    weights and the data streams: what a checkpoint saves (`models.checkpoint`)."""

    errors: dict[str, np.ndarray]  # evaluated quantity -> (R, E)
    best_err: np.ndarray  # (R,) the selecting quantity at each replica's selected evaluation
    best_index: np.ndarray  # (R,)
    diverged_at: np.ndarray  # (R,)
    since: np.ndarray  # (R,) evaluation of each replica's last (re)initialisation
    reinit_steps: list[list[int]]
    best: Any = None  # what `keep` gave at each replica's selected evaluation
    next_chunk: int = 0  # the chunk of the plan that trains next
    evaluated: int = 1  # evaluations done
    step_seconds: float = 0.0
    train_seconds: float = 0.0  # before this process took over (a resumed fit)
    history: dict = field(default_factory=dict)  # [Primer]'s stored losses (values, counts)

    @classmethod
    def fresh(cls, replicas: int) -> FitState:
        return cls({}, np.full(replicas, np.inf), np.zeros(replicas, dtype=int),
                   np.full(replicas, -1), np.zeros(replicas, dtype=int),
                   [[] for _ in range(replicas)])

    def tree(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def fit(trainer, units: list[str], batches: Callable[[int], dict],
        evaluate: Callable[[], dict[str, np.ndarray]], cfg: TrainConfig, replicas: int, *,
        lams: Callable[[np.ndarray], np.ndarray], chunk: int, first_divisor: int = 1,
        keep: Callable[[], Any] | None = None, watch: tuple[str, ...] | None = None,
        stop_when_diverged: bool = False, progress: Callable[[int], None] | None = None,
        fresh: Callable[[np.ndarray, np.ndarray], list] | None = None,
        streams: Iterable[np.random.Generator] = (), carry: dict | None = None) -> Fit:
    """Train R replicas, evaluating every ``cfg.eval_interval`` steps and at the end.

    ``batches(T)`` draws T steps of data as ``trainer.train``'s keyword arguments;
    ``evaluate()`` gives, per evaluated quantity, the (R,) errors now: the first selects
    the model (the lowest, non-finite ones ignored), and a non-finite one among ``watch``
    (default: all; ``()``: none, [Primer]'s rule) marks the replica diverged; ``keep()``
    is what a replica keeps at its selected evaluation (default: ``trainer.params()``);
    ``lams(steps)`` the regulariser weights per step, (T, layers) or (T, R, layers), read
    after the evaluation before the chunk (so they may depend on it).
    ``stop_when_diverged``: training ends once every replica has diverged. With
    ``cfg.reinit``, ``fresh(replicas, attempts)`` gives per layer their new parameters
    (None: the layer keeps its weights) and ``extra["reinit_steps"]`` lists the steps at
    which each replica was re-initialised.

    Checkpoints (`models.checkpoint`, where the runner turned them on): at chunk boundaries,
    every few minutes, at the end and when a stop is requested, the fit's state, the
    trainer's (``get_state`` / ``set_state``) and the state of the generators ``streams``
    that ``batches`` draws from are saved, with ``carry``, a dict of arrays the adapter keeps
    between evaluations (e.g. the last one, or the untrained network's outputs); a fit
    that finds its checkpoint continues from it, ``carry`` refilled, and ends as the
    uninterrupted fit would, bit for bit."""
    if cfg.reinit is not None and fresh is None:
        raise ValueError("cfg.reinit needs fresh(replicas, attempts) to draw new weights")
    keep = keep or trainer.params
    streams = list(streams)
    eval_steps = evaluation_steps(cfg.steps, cfg.eval_interval)
    st = FitState.fresh(replicas)

    def run_evaluation(e: int) -> None:
        for name, value in evaluate().items():
            st.errors.setdefault(name, np.full((replicas, len(eval_steps)), np.nan))[:, e] = value
        watched = [st.errors[n][:, e] for n in (st.errors if watch is None else watch)]
        bad = ~np.all(np.isfinite(watched), axis=0) if watched else np.zeros(replicas, bool)
        st.diverged_at[bad & (st.diverged_at < 0)] = eval_steps[e]
        sel = st.errors[next(iter(st.errors))][:, e]
        improved = np.isfinite(sel) & (sel < st.best_err) & (st.diverged_at < 0)
        if st.best is None:
            st.best = keep()
        elif improved.any():
            _copy_rows(st.best, keep(), improved)
        st.best_err[improved] = sel[improved]
        st.best_index[improved] = e

    history = primer.History(cfg.reinit, replicas, eval_steps) \
        if isinstance(cfg.reinit, PrimerReinit) else None

    def reinitialise(e: int) -> None:
        first = st.errors[next(iter(st.errors))]
        mask = (history.stalled(first[:, e], e) if history is not None
                else stalled(first, e, st.since, cfg.reinit)) & (st.diverged_at < 0)
        if mask.any():
            which = np.flatnonzero(mask)
            attempts = np.array([len(st.reinit_steps[r]) + 1 for r in which])
            trainer.reinit(mask, fresh(which, attempts),
                           keep_moments=getattr(cfg.reinit, "keep_moments", False))
            st.since[mask] = e
            for r in which:
                st.reinit_steps[r].append(int(eval_steps[e]))

    chunks = plan(eval_steps, chunk, first_divisor)
    saver = checkpoint.for_fit()
    header = {"replicas": replicas, "plan": checkpoint.digest(np.asarray(chunks, np.int64)),
              "versions": checkpoint.versions(trainer)}
    carry = {} if carry is None else carry
    saved = _restore(saver, header, st, trainer, streams, history) if saver else None
    if saved is not None:
        carry.clear()
        carry.update(saved.get("carry", {}))

    def save(next_chunk: int, stream_states: list) -> None:
        st.next_chunk = next_chunk
        st.train_seconds = elapsed()
        if history is not None:
            st.history = {"values": history.values, "counts": history.counts}
        saver.save(header, {"fit": st.tree(), "trainer": trainer.get_state(),
                            "streams": stream_states, "carry": carry})

    # A trainer may turn a chunk into what it trains on (tensors, derived inputs) ahead of
    # time, and size a compiled loop for the longest chunk before the first.
    prepare = getattr(trainer, "prepare", lambda **data: data)
    if chunks and hasattr(trainer, "reserve"):
        trainer.reserve(max(n for _, n, _ in chunks))
    start, begun, before = time.perf_counter(), st.next_chunk, st.train_seconds
    elapsed = lambda: before + time.perf_counter() - start  # noqa: E731

    def make(n: int) -> tuple[list, dict]:
        """The streams' states before drawing (where a checkpoint resumes), and the chunk."""
        return [g.bit_generator.state for g in streams], prepare(**batches(n))

    # Data for the next chunk is made on a second thread while this one trains or
    # evaluates (numpy and both frameworks release the GIL); the order of draws is unchanged.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(make, chunks[begun][1]) if begun < len(chunks) else None
        if saved is None:
            run_evaluation(0)
        elif progress and begun:
            progress(sum(n for _, n, _ in chunks[:begun]) * replicas)
        for i in range(begun, len(chunks)):
            first, n, e = chunks[i]
            if stop_when_diverged and (st.diverged_at >= 0).all():
                pending.cancel()
                break
            stop = checkpoint.stop_requested()
            if saver is not None and i > begun and (stop or saver.due()):
                save(i, pending.result()[0])
            if stop:
                pending.cancel()
                raise checkpoint.Interrupted(f"stopped before step {first + 1:,} of "
                                             f"{cfg.steps:,}")
            _, data = pending.result()
            if i + 1 < len(chunks):
                pending = pool.submit(make, chunks[i + 1][1])
            began = time.perf_counter()
            trainer.train(lams=lams(np.arange(first + 1, first + n + 1)), **data)
            st.step_seconds += time.perf_counter() - began
            if progress:
                progress(n * replicas)
            if e >= 0:
                run_evaluation(e)
                st.evaluated = e + 1
                if cfg.reinit is not None and e < len(eval_steps) - 1:  # none after the last
                    reinitialise(e)
        else:
            i = len(chunks)
        if saver is not None and i > begun:  # a finished fit: its group may still be stopped
            save(i, [g.bit_generator.state for g in streams])
    extra = {"reinit_steps": st.reinit_steps} if cfg.reinit is not None else {}
    return Fit(units, eval_steps, st.errors, st.best_index, st.best, st.diverged_at,
               st.evaluated, train_seconds=elapsed(), step_seconds=st.step_seconds,
               extra=extra)


def _restore(saver, header: dict, st: FitState, trainer, streams: list, history) -> dict | None:
    """Load ``saver``'s checkpoint into the fit's state, the trainer and the streams; None
    (and nothing changed) when there is none or it does not fit this program."""
    saved = saver.load(header)
    if saved is None:
        return None
    try:
        if len(saved["streams"]) != len(streams):
            raise checkpoint.Rejected(f"it has {len(saved['streams'])} data streams, this "
                                      f"program {len(streams)}")
        loaded = FitState(**saved["fit"])
        trainer.set_state(saved["trainer"])  # checks every shape before it changes anything
    except (ValueError, KeyError, TypeError) as err:
        saver.reject(err)
        return None
    for g, state in zip(streams, saved["streams"]):
        g.bit_generator.state = state
    for k in st.__dataclass_fields__:
        setattr(st, k, getattr(loaded, k))
    st.best_index, st.since = st.best_index.astype(int), st.since.astype(int)
    st.reinit_steps = [list(map(int, r)) for r in st.reinit_steps]
    if history is not None and st.history:
        history.values[...], history.counts[...] = st.history["values"], st.history["counts"]
    return saved


def results(fit_: Fit, metrics: Callable[[int], dict], curves: Iterable[str] | None = None,
            what: str = "error", finite_only: bool = False) -> list[dict]:
    """One result per replica (see `benchmarks.runner`): status, reason, ``metrics(r)`` and
    the curve of the quantities ``curves`` (default: all) over the evaluated steps, with
    non-finite values as None when ``finite_only``."""
    names = list(fit_.errors) if curves is None else list(curves)
    out = []
    for r in range(len(fit_.diverged_at)):
        diverged = fit_.diverged_at[r] >= 0
        curve = {"step": fit_.steps[:fit_.evaluated].tolist()}
        for name in names:
            values = fit_.errors[name][r, :fit_.evaluated].tolist()
            curve[name] = [v if np.isfinite(v) else None for v in values] if finite_only \
                else values
        out.append({
            "status": "diverged" if diverged else "ok",
            "reason": f"non-finite {what} at step {fit_.diverged_at[r]}" if diverged else "",
            "metrics": metrics(r),
            "curve": curve,
        })
    return out
