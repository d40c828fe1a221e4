"""What every task provides, and the per-replica data streams built from it.

A task is framework-free: numpy data from explicit seeds, fixed evaluation sets
whose inputs are shared by every seed (so R replicas evaluate on one array), the
network it needs, and its metrics.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

# Independent random streams derived from one seed: np.random.default_rng([seed, KIND]).
TASK_STREAM, INIT_STREAM, DATA_STREAM = 0, 1, 2
EVAL_SEED = 20260101  # the fixed evaluation sets do not depend on the run's seed
COMMON_DATA_SEED = 20260102  # the one data stream every replica sees with --common-data


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


@dataclass(frozen=True)
class PrimerReinit:
    """[Primer]'s re-initialisation of a stalled run (its loop, PY:683-700, defaults
    PY:319-333; `models.primer`).

    After every iteration the loop appends the last evaluated interpolation MSE to a list;
    every ``interval``-th iteration, once the list holds more than ``stored`` entries, it
    re-initialises the weights when the mean of the list's first half is at most the mean
    plus the standard deviation of its second half, and that mean is above ``level``; the
    list is then emptied and Adam's state kept. This suite's loop acts at evaluations: at
    each one it plays the checks of the coming interval (their entries are known: the
    value just evaluated) and re-initialises a replica whose check would fire there now,
    up to one evaluation interval early; the list then restarts as [Primer]'s does, with
    the entries after that check (`models.primer.History`). New weights come from
    ``[seed, INIT_STREAM, layer, attempt]`` as with `Reinit`."""

    interval: int = 10  # --reinit-epoch-interval
    stored: int = 5000  # --reinit-max-stored-losses
    level: float = 1.0  # --reinit-loss-thr
    keep_moments: bool = True


class TaskError(ValueError):
    """A bad task parameter; the message names the value and what is accepted."""


class Task:
    """Base class: a name, a ``parameters`` dict of defaults, and the methods below."""

    name: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {}
    # The framework-free loop that trains a group of seeds: a module of models/ with
    # run_group(task, specs, progress) -> (per-seed results, train seconds).
    loop: ClassVar[str] = "models.supervised"
    # What `run` trains when no --units are given.
    default_models: ClassVar[tuple[str, ...]] = ()
    # Per budget name, what this task changes in it (steps, eval_interval, batch_size,
    # lr, seeds): a grid-world step is not a static-arithmetic step.
    budgets: ClassVar[dict[str, dict[str, Any]]] = {}
    # Parameters that may differ between the replicas of one program: specs equal but for
    # the seed and these train as one network (`benchmarks.suite.groups`), each replica
    # with its own task. Only for a task whose loop handles it and whose inputs are
    # `train_inputs_from` uniform draws (the static task: op and range pair).
    program_params: ClassVar[tuple[str, ...]] = ()
    # Inputs per sample made by `train_inputs_from` (None: the task draws otherwise).
    uniform_width: int | None = None

    def __init__(self, **params):
        unknown = set(params) - set(self.parameters)
        if unknown:
            raise TaskError(f"unknown parameter(s) {sorted(unknown)} for task {self.name!r}; "
                            f"known: {', '.join(self.parameters)}")
        self.params = {**self.parameters, **params}
        self.validate()

    def __str__(self):
        changed = [f"{k}={v}" for k, v in self.params.items() if v != self.parameters[k]]
        return f"{self.name}[{','.join(changed)}]" if changed else self.name

    def validate(self) -> None:
        """Raise TaskError on a bad parameter."""

    def footprint(self, batch_size: int, replicas: int) -> dict[str, float]:
        """Estimated bytes of the largest arrays one group of ``replicas`` seeds holds, by
        what they are and the parameters that size them (see `tasks.limits`)."""
        return {}

    def preflight(self, batch_size: int, replicas: int) -> None:
        """What this machine must provide, checked before anything is trained or written
        (memory; a task that reads files checks them here). Raises TaskError."""
        from tasks import limits

        limits.check(self.name, self.footprint(batch_size, replicas))

    @classmethod
    def defaults(cls, grid: dict[str, list], budget: str) -> list[tuple[dict[str, Any],
                                                                         tuple[str, ...]]]:
        """(task parameters, models) that `run` trains at a budget when no --units are given."""
        return [({}, cls.default_models)]

    def budget(self, name: str) -> dict[str, Any]:
        """What this task, with these parameters, changes in budget ``name`` (steps,
        eval_interval, batch_size, lr, seeds): ``budgets`` unless a task's protocol makes
        them depend on its parameters."""
        return dict(self.budgets.get(name, {}))

    def references(self) -> list[tuple[dict[str, Any], str, tuple[int, ...]]]:
        """Runs that must finish before this task's runs are trained, each as (task
        parameters, model, seeds): what the task scores against (e.g. thresholds made from
        other runs). The suite trains them in an earlier stage (`benchmarks.suite.stages`)
        and hands their records to `use_references`. None by default."""
        return []

    def use_references(self, records: list[dict]) -> str:
        """Take the records of the runs `references` named, one per run (status
        ``missing`` where a run has none), before this task's runs train. Returns "" when
        the runs can be scored against them, else why not (the records say it)."""
        return ""

    def check_model(self, model: str) -> None:
        """Raise (naming the model and the accepted ones) if this task cannot train it."""
        from models import registry

        self.layers(registry.parse_model(model))

    # what each task defines
    def layers(self, model: tuple[str, str]) -> list[tuple[str, int, int]]:
        raise NotImplementedError

    def instance(self, seed: int) -> Any:
        """What is fixed for one seed (e.g. the subsets summed)."""
        raise NotImplementedError

    def train_inputs(self, rng: np.random.Generator, shape: tuple[int, ...],
                     out: np.ndarray | None = None) -> np.ndarray:
        """Training inputs (*shape, ...) drawn from ``rng``; written into ``out`` when
        given (a view of the same shape, e.g. one replica's slot in a group's buffer)."""
        raise NotImplementedError

    def train_inputs_from(self, u: np.ndarray, out: np.ndarray) -> np.ndarray | None:
        """Training inputs, shaped as ``u``, made from float32 uniform draws u in [0, 1)
        exactly as `train_inputs` makes them from the stream those draws came from (so one
        seed's replicas draw once and map, `ReplicaBatches`); None where a task's inputs
        are not such a map."""
        return None

    def targets(self, instance: Any, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def eval_inputs(self) -> dict[str, np.ndarray]:
        """Fixed evaluation inputs; the first set selects the model."""
        raise NotImplementedError

    def metrics(self, seed) -> dict[str, Any]:
        """One seed's metrics from its `models.engine.SeedFit`: its curves, selected
        evaluation, what its loop kept there (``best``) and, where the loop gives them, its
        ``instance`` and ``eval_sets``. Every task's carry the headline ``success``,
        ``interpolation_mse`` and ``extrapolation_mse``, and their `normalised` errors
        ``interpolation_normalised`` and ``extrapolation_normalised``."""
        raise NotImplementedError


def normalised(err, untrained) -> float:
    """[NALU]'s normalised error, 100 * err / untrained: 0 is exact, 100 the error of the
    untrained (initial) model of the same seed on the same set, above 100 worse than it.
    It ranks models whether or not any reaches a success bar. NaN where either error is
    missing or not finite, or the untrained model is exact (nothing to scale by)."""
    try:
        err, untrained = float(err), float(untrained)
    except (TypeError, ValueError):  # None: an error that was not measured
        return float("nan")
    if not np.isfinite(err) or not np.isfinite(untrained) or untrained <= 0:
        return float("nan")
    return float(100.0 * err / untrained)


class ReplicaBatches:
    """Training data for R replicas: each its seed's own stream, or one shared stream.

    ``tasks`` is one task for all replicas or one per replica (a program across ops and
    range pairs). Where every task makes its inputs from uniform draws
    (`Task.train_inputs_from`), a seed's draws are made once and each of its replicas maps
    them: the numbers each replica would draw, at the cost of one draw per seed. The
    returned arrays live in two alternating buffers (fresh 30 MB arrays every chunk cost as
    much in page faults as drawing the numbers): a chunk stays valid until the call after
    next, which is all the one-ahead prefetch of `models.engine.fit` needs.
    """

    def __init__(self, tasks: Task | list[Task], instances: list, seeds: list[int],
                 batch_size: int, common_data: bool = False):
        self.tasks = tasks if isinstance(tasks, list) else [tasks] * len(instances)
        self.instances, self.batch_size = instances, batch_size
        self.common = common_data
        self._buffers: dict[tuple, list[np.ndarray]] = {}
        self._calls = 0
        if common_data:
            self.seeds = [COMMON_DATA_SEED]
            self.rngs = [np.random.default_rng([COMMON_DATA_SEED, DATA_STREAM])]
        else:
            self.seeds = list(seeds)
            self.rngs = [np.random.default_rng([s, DATA_STREAM]) for s in seeds]
        # replicas by stream: the first of each seed draws, the others map its draws
        self._first: dict[int, int] = {}
        for k, seed in enumerate(self.seeds):
            self._first.setdefault(seed, k)
        # (a group of distinct seeds keeps drawing per replica: the same numbers, one pass)
        self._width = getattr(self.tasks[0], "uniform_width", None)
        self._shared = self._width is not None and len(self._first) < len(self.seeds)

    def __call__(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """(T, R or 1, B, n_in) inputs and (T, R, B, n_out) targets, float32."""
        shape = (steps, self.batch_size)
        self._calls += 1
        xs = self._draw_shared(shape) if self._shared else self._draw_each(shape)
        ys = None
        for k, (task, inst) in enumerate(zip(self.tasks, self.instances)):
            y = task.targets(inst, xs[:, 0 if self.common else k])
            if ys is None:
                ys = self._buffer("y", (steps, len(self.instances), *y.shape[1:]))
            ys[:, k] = y
        return xs, ys

    def _draw_each(self, shape: tuple) -> np.ndarray:
        xs = None
        for k, rng in enumerate(self.rngs):
            if xs is None:  # the first draw gives the shape of the buffer
                x = self.tasks[k].train_inputs(rng, shape)
                xs = self._buffer("x", (shape[0], len(self.rngs), *x.shape[1:]))
                xs[:, k] = x
            else:  # straight into its slot: a copy costs as much as the draw
                self.tasks[k].train_inputs(rng, shape, out=xs[:, k])
        return xs

    def _draw_shared(self, shape: tuple) -> np.ndarray:
        xs = self._buffer("x", (shape[0], len(self.seeds), shape[1], self._width))
        u = self._buffer("u", (shape[0], shape[1], self._width))
        for seed, first in self._first.items():
            random32(self.rngs[first], 1.0, 0.0, u)
            for k in (k for k, s in enumerate(self.seeds) if s == seed):
                self.tasks[k].train_inputs_from(u, out=xs[:, k])
        return xs

    def _buffer(self, name: str, shape: tuple) -> np.ndarray:
        pair = self._buffers.setdefault((name, shape), [])
        while len(pair) < 2:
            pair.append(np.empty(shape, dtype=np.float32))
        return pair[self._calls % 2]


def sample_ranges(rng: np.random.Generator, shape, ranges, out: np.ndarray | None = None
                  ) -> np.ndarray:
    """Uniform over a union of intervals, one draw per element (so streams stay aligned);
    written into ``out`` when given."""
    ranges = np.asarray(ranges, dtype=np.float32)
    lengths = ranges[:, 1] - ranges[:, 0]
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    if len(ranges) == 1:
        return random32(rng, lengths[0], ranges[0, 0], out)
    u = random32(rng, lengths.sum(), np.float32(0), np.empty(shape, dtype=np.float32))
    edges = np.r_[0.0, np.cumsum(lengths)]
    for (low, _), left, right in zip(ranges, edges[:-1], edges[1:]):
        mask = (u >= left) & (u < right) if right < edges[-1] else u >= left
        out[mask] = low + (u[mask] - left)
    return out


def map_ranges(u: np.ndarray, ranges, out: np.ndarray) -> np.ndarray:
    """`sample_ranges`' numbers from its uniform draws u = ``random32(rng, 1, 0, u)``, bit
    for bit: one interval is u * length + low in float32 (``random32``'s two roundings:
    its scale times 2**-24 is exact); a union maps u * total length piecewise."""
    ranges = np.asarray(ranges, dtype=np.float32)
    lengths = ranges[:, 1] - ranges[:, 0]
    if len(ranges) == 1:
        np.multiply(u, lengths[0], out=out)
        out += ranges[0, 0]
        return out
    total = np.multiply(u, lengths.sum(), dtype=np.float32)
    total += np.float32(0)
    edges = np.r_[0.0, np.cumsum(lengths)]
    for (low, _), left, right in zip(ranges, edges[:-1], edges[1:]):
        mask = (total >= left) & (total < right) if right < edges[-1] else total >= left
        out[mask] = low + (total[mask] - left)
    return out


def random32(rng: np.random.Generator, scale, offset, out: np.ndarray) -> np.ndarray:
    """``rng.random(out.shape, float32) * scale + offset`` in float32 into ``out``, bit for
    bit and drawing the same numbers, faster (docs/performance.md).

    numpy makes a float32 as (u32 >> 8) * 2**-24, where PCG64's u32s are the low then the
    high half of each 64-bit output; scaling by 2**-24 is exact, so multiplying by
    scale * 2**-24 rounds as u * scale does. Done here on ``random_raw``'s 64-bit outputs
    in a few vectorised passes; any other bit generator, an odd count, a half-used
    64-bit output (after an odd draw) or a big-endian machine takes numpy's own path."""
    scale, offset = np.float32(scale), np.float32(offset)
    bits = rng.bit_generator
    if (out.size % 2 or sys.byteorder != "little" or not isinstance(bits, np.random.PCG64)
            or bits.state["has_uint32"]):
        out[...] = rng.random(out.shape, dtype=np.float32)
        out *= scale
    else:
        u32 = bits.random_raw(out.size // 2).view(np.uint32)
        np.right_shift(u32, 8, out=u32)
        np.multiply(u32.reshape(out.shape), scale * np.float32(2.0 ** -24), out=out,
                    dtype=np.float32, casting="unsafe")
    out += offset
    return out
