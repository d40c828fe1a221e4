"""Static arithmetic [NAU]: y = op(a, b), a and b sums of two overlapping input subsets.

Protocol (docs/tasks.md, verified from [NAU]): x of size 100 drawn from
U[1, 2] for training and interpolation, U[2, 6] for extrapolation; a is the sum of
x[o:o+25], b of x[o+13:o+38] (subset ratio 0.25, overlap ratio 0.5), with the
offset o drawn once per seed. Network: two layers, hidden size 2.

With ``input_size=2`` it is the [Primer] single-module variant: a = x0, b = x1,
one unit (the model's second layer name) computes y.

Success threshold (this suite's reading of [NAU]): the extrapolation MSE of the
correct solution with every first-layer weight perturbed by eps = 1e-5, taking
the worse of the two sign patterns (same sign on both subsets, or opposite), so
that a-b and a+b each get a non-zero threshold.

``protocol=primer`` (set by ``--budget primer``) runs the single-module variant as
[Primer]'s code does: its per-unit training settings (`models.primer`), no divergence
rule (the lowest interpolation MSE over every evaluation is selected, non-finite ones
ignored) and its threshold (`primer_threshold`).

``protocol=explainer`` (set by ``--budget explainer``) runs the experiment of the document
this project grew from as its code runs it (docs/explainer-protocol.md): 10 inputs,
a = x[0:4], b = x[4:10], one fixed full-batch training set per seed from U[0, 10), test
set U[0, 100), the model after the last step (no selection), success where the test
``tf.nn.l2_loss`` reaches its figure `EXPLAINER_L2`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from tasks import limits
from tasks.base import (
    DATA_STREAM,
    EVAL_SEED,
    TASK_STREAM,
    PrimerReinit,
    Reinit,
    Task,
    TaskError,
    map_ranges,
    normalised,
    sample_ranges,
)

OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "squared": lambda a, b: a * a,
    "root": lambda a, b: np.sqrt(a),
}
# sqrt of float32's largest value: larger targets make the squared error infinite
MAX_TARGET = float(np.sqrt(np.finfo(np.float32).max))
POSITIVE_OPS = {"root"}  # undefined for a <= 0

# What `run` trains when no --units are given: per op, the models [NAU] compares.
DEFAULT_MATRIX = {
    "add": ("linear", "relu6", "nac", "nalu", "nau"),
    "sub": ("linear", "nac", "nalu", "nau"),
    "mul": ("nac-nacmul", "nalu", "nau-nmu"),
}
DEFAULT_MODELS = tuple(dict.fromkeys(m for ms in DEFAULT_MATRIX.values() for m in ms))

# [Primer]'s single-module benchmark (`--budget primer`): its nine (interpolation,
# extrapolation) range pairs and per op the units it runs, read from its public code
# (bmistry4/nalm-benchmark, lfs_batch_jobs/single_layer_task/benchmarking/
# single_layer_benchmark.sh; any unit runs on any op with --units, nalu_sep included).
PRIMER_RANGES = (
    ((-20.0, -10.0), (-40.0, -20.0)),
    ((-2.0, -1.0), (-6.0, -2.0)),
    ((-1.2, -1.1), (-6.1, -1.2)),
    ((-0.2, -0.1), (-2.0, -0.2)),
    ((-2.0, 2.0), ((-6.0, -2.0), (2.0, 6.0))),
    ((0.1, 0.2), (0.2, 2.0)),
    ((1.0, 2.0), (2.0, 6.0)),
    ((1.1, 1.2), (1.2, 6.0)),
    ((10.0, 20.0), (20.0, 40.0)),
)
_BOTH = ("nalu", "inalu", "gnalu")  # units with an additive and a multiplicative path
PRIMER_MATRIX = {
    "add": ("nac", "nau", *_BOTH),
    "sub": ("nac", "nau", *_BOTH),
    "mul": ("nacmul", "nmu", *_BOTH, "npu", "realnpu"),
    "div": ("nacmul", *_BOTH, "npu", "realnpu"),
}

# The explainer's experiment (`protocol=explainer`, `--budget explainer`): its six functions,
# its geometry and ranges, and the test loss it reports for a + b (docs/explainer-protocol.md)
EXPLAINER_OPS = ("add", "sub", "mul", "div", "squared", "root")
EXPLAINER_PARAMS = {"input_size": 10, "interpolation_range": (0.0, 10.0),
                    "extrapolation_range": (0.0, 100.0), "hidden_size": 2, "eval_size": 10_000}
EXPLAINER_SPLIT = 4  # a = x[:4], b = x[4:]
EXPLAINER_L2 = 8.575e-05  # its printed test tf.nn.l2_loss = sum of squared errors / 2


def parse_ranges(value, what: str) -> tuple[tuple[float, float], ...]:
    """(low, high) or a union ((l1, h1), (l2, h2), ...) -> tuple of intervals."""
    try:
        arr = np.asarray(value, dtype=float)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) == 0:
            raise ValueError
    except (TypeError, ValueError):
        raise TaskError(f"bad {what} {value!r}; expected LOW,HIGH or a union "
                        f"LOW,HIGH+LOW,HIGH") from None
    for low, high in arr:
        if not (np.isfinite(low) and np.isfinite(high)) or low >= high:
            raise TaskError(f"bad {what} [{low:g}, {high:g}]: low must be below high "
                            f"and both finite")
    limits.float32_ranges(arr, what)
    return tuple((float(lo), float(hi)) for lo, hi in arr)


@dataclass(frozen=True)
class Subsets:
    """The input indices summed into a and b for one seed."""

    a: slice
    b: slice


class StaticArithmetic(Task):
    name = "static_arithmetic"
    parameters = {
        "op": "add",
        "input_size": 100,
        "subset_ratio": 0.25,
        "overlap_ratio": 0.5,
        "interpolation_range": (1.0, 2.0),
        "extrapolation_range": (2.0, 6.0),
        "hidden_size": 2,
        "eval_size": 10_000,
        "eps": 1e-5,
        # [iNALU]'s re-initialisation of a stalled replica (units that opt in: iNALU):
        # off (default; also false), on or true (tasks.base.Reinit's defaults), or
        # WINDOW,FACTOR,LEVEL; on, the spec holds (window, factor, level)
        "reinit": "off",
        # suite (default: this suite's reading of [NAU]), primer ([Primer]'s code: its
        # training settings per unit, selection and threshold; input_size=2 only) or
        # explainer (the explainer's experiment: EXPLAINER_PARAMS, no selection)
        "protocol": "suite",
    }
    default_models = DEFAULT_MODELS
    # one network per model across ops and range pairs (models.supervised)
    program_params = ("op", "interpolation_range", "extrapolation_range")
    # left out of specs while off / default (reports: reports/frame.py)
    omitted_when_off = ("reinit", "protocol")

    @classmethod
    def defaults(cls, grid, budget):
        """Per op (--ops, default add,sub,mul), the models [NAU] compares on it; at the
        ``primer`` budget, [Primer]'s matrix (`primer_matrix`)."""
        if budget == "primer":
            return cls.primer_matrix(grid)
        if budget == "explainer":
            return [({"op": op, **EXPLAINER_PARAMS, "protocol": "explainer"}, ("nalu",))
                    for op in grid.get("op", EXPLAINER_OPS)]
        return [({"op": op}, DEFAULT_MATRIX.get(op, DEFAULT_MODELS))
                for op in grid.get("op", DEFAULT_MATRIX)]

    @classmethod
    def primer_matrix(cls, grid):
        """Input size 2, per op (default add,sub,mul,div) and range pair of PRIMER_RANGES,
        the units of PRIMER_MATRIX. ``--param interpolation_range=...`` keeps the pairs with
        that interpolation range; ``--param extrapolation_range=...`` replaces theirs."""
        pairs = PRIMER_RANGES
        if "interpolation_range" in grid:
            wanted = [parse_ranges(v, "interpolation_range") for v in grid["interpolation_range"]]
            pairs = [p for p in PRIMER_RANGES if parse_ranges(p[0], "") in wanted]
            if not pairs:
                known = "; ".join(f"{lo:g},{hi:g}" for (lo, hi), _ in PRIMER_RANGES)
                raise TaskError(f"interpolation_range {grid['interpolation_range'][0]!r} is "
                                f"not one of [Primer]'s nine: {known}")
        out = []
        for op in grid.get("op", tuple(PRIMER_MATRIX)):
            for interpolation, extrapolation in pairs:
                fixed = {"op": op, "input_size": 2, "interpolation_range": interpolation,
                         "protocol": "primer"}
                if "extrapolation_range" not in grid:
                    fixed["extrapolation_range"] = extrapolation
                out.append((fixed, PRIMER_MATRIX.get(op, tuple(dict.fromkeys(
                    u for us in PRIMER_MATRIX.values() for u in us)))))
        return out

    def check_model(self, model: str) -> None:
        """The single-module variant trains one unit: a two-layer model is refused there
        rather than silently trained as its second layer."""
        from models import registry

        first, second = registry.parse_model(model)
        if self.single_module and first != second:
            raise TaskError(f"model {model!r} has two layers but input_size=2 is the [Primer] "
                            f"single-module variant, which trains one unit; use {second!r} "
                            f"(or {first!r})")

    def validate(self) -> None:
        p = self.params
        if not isinstance(p["op"], str) or p["op"] not in OPS:
            raise TaskError(f"unknown op {p['op']!r}; known: {', '.join(OPS)}")
        for key in ("subset_ratio", "overlap_ratio", "eps"):  # --param gives any type
            value = p[key]
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not np.isfinite(value) or (key == "eps" and value <= 0):
                raise TaskError(f"bad {key} {value!r}; expected a finite number"
                                + (" > 0" if key == "eps" else ""))
        for key in ("input_size", "hidden_size", "eval_size"):
            if not isinstance(p[key], (int, np.integer)) or p[key] < 1:
                raise TaskError(f"bad {key} {p[key]!r}; expected a positive integer")
        p["reinit"] = parse_reinit(p["reinit"])
        if p["reinit"] is None:  # off: left out of the spec, so record ids stay as before
            del p["reinit"]
        if p["protocol"] not in PROTOCOLS:
            raise TaskError(f"unknown protocol {p['protocol']!r}; known: {', '.join(PROTOCOLS)}")
        if p["protocol"] == "suite":  # the default: left out of the spec, as reinit
            del p["protocol"]
        elif p["protocol"] == "explainer":
            self._validate_explainer()
        elif p["input_size"] != 2 or p["op"] not in PRIMER_THRESHOLDS:
            raise TaskError(f"protocol primer is [Primer]'s single-module benchmark: "
                            f"input_size=2 and op one of {', '.join(PRIMER_THRESHOLDS)} "
                            f"(got input_size={p['input_size']}, op={p['op']!r})")
        elif "reinit" in p:
            raise TaskError("protocol primer sets the re-initialisation itself "
                            "(models/primer.py); leave reinit off")
        p["interpolation_range"] = parse_ranges(p["interpolation_range"], "interpolation_range")
        p["extrapolation_range"] = parse_ranges(p["extrapolation_range"], "extrapolation_range")
        if p["op"] in POSITIVE_OPS and self.protocol != "explainer":  # there a >= 0: sqrt(0) = 0
            for key in ("interpolation_range", "extrapolation_range"):
                low = min(lo for lo, _ in p[key])
                if low <= 0:
                    raise TaskError(f"op {p['op']!r} needs positive inputs but {key} reaches "
                                    f"{low:g}; use a range with low > 0")
        if p["input_size"] != 2:
            if not (0 < p["subset_ratio"] <= 1) or not (0 <= p["overlap_ratio"] < 1):
                raise TaskError("subset_ratio must be in (0, 1] and overlap_ratio in [0, 1)")
            if self.subset_size < 1 or self.span > p["input_size"]:
                raise TaskError(f"input_size {p['input_size']} cannot hold two subsets of "
                                f"{self.subset_size} overlapping by {self.overlap}")
        for key in ("interpolation_range", "extrapolation_range"):
            self._check_targets_fit(key)

    def _check_targets_fit(self, key: str) -> None:
        """Refuse a range whose targets square beyond float32: the loss (the squared
        error, in float32) of the untrained model would be infinite from the first step,
        so every run would end diverged. The targets' largest magnitude is bounded by the
        op at the corners: a and b at +-(inputs summed) x the largest |endpoint| (and,
        where every range keeps one sign, the smallest, for division)."""
        ranges = np.abs(np.asarray(self.params[key], dtype=float))
        count = 1 if self.single_module else self.subset_size
        corners = [count * ranges.max()]
        if all(lo > 0 or hi < 0 for lo, hi in self.params[key]):
            corners.append(count * ranges.min())
        corners = np.array(corners + [-c for c in corners])
        a, b = np.meshgrid(corners, corners)
        with np.errstate(all="ignore"):
            reach = float(np.nanmax(np.abs(OPS[self.params["op"]](a, b))))
        if not reach <= MAX_TARGET:
            raise TaskError(f"bad {key} "
                            f"{'U'.join(f'[{lo:g},{hi:g}]' for lo, hi in self.params[key])}: op "
                            f"{self.params['op']!r} over it reaches targets of {reach:.3g}, "
                            f"whose squared error overflows float32 (the models train in "
                            f"float32; |targets| must stay below {MAX_TARGET:.3g}); "
                            f"use smaller values")

    def _validate_explainer(self) -> None:
        p = self.params
        wrong = {k: p[k] for k, v in EXPLAINER_PARAMS.items()
                 if (parse_ranges(p[k], k) != parse_ranges(v, k) if k.endswith("_range")
                     else p[k] != v)}
        if wrong or p["op"] not in EXPLAINER_OPS or "reinit" in p:
            raise TaskError(f"protocol explainer is the explainer's experiment: "
                            f"{', '.join(f'{k}={v}' for k, v in EXPLAINER_PARAMS.items())}, "
                            f"op one of {', '.join(EXPLAINER_OPS)}, reinit off (got "
                            f"op={p['op']!r}{''.join(f', {k}={v}' for k, v in wrong.items())})")

    @property
    def protocol(self) -> str:
        return self.params.get("protocol", "suite")

    @property
    def reinit(self):
        """The loop's re-initialisation rule, or None when off (models.engine.fit);
        [Primer]'s under protocol primer."""
        if self.protocol == "primer":
            return PrimerReinit()
        value = self.params.get("reinit")
        return None if value is None else Reinit(*value)

    def footprint(self, batch_size, replicas):
        """Evaluation sets (float32, and a float64 copy for the success bar), each
        replica's evaluation targets (and, in a program across range pairs, its own copy
        of the inputs), training batches (two buffers and their logs), weights with
        gradients and Adam's moments."""
        p, n = self.params, self.params["input_size"]
        step = replicas * batch_size * n * 4
        return {
            f"evaluation sets (eval_size={p['eval_size']} x input_size={n})":
                16.0 * p["eval_size"] * n,
            f"evaluation targets per replica, and inputs in a program across range pairs "
            f"({replicas} x eval_size={p['eval_size']}, two sets; an upper bound)":
                2.0 * replicas * p["eval_size"] * (16 + 4 * n),
            f"training batches ({replicas} seed(s) x batch {batch_size} x input_size={n})":
                4.0 * max(step, 32 << 20),
            f"weights ({replicas} seed(s) x input_size={n} x hidden_size={p['hidden_size']})":
                16.0 * replicas * n * p["hidden_size"],
            "magnitude curve (1000 samples x input_size)": 24.0 * 1000 * n,
        }

    # protocol geometry
    @property
    def single_module(self) -> bool:
        return self.params["input_size"] == 2

    @property
    def subset_size(self) -> int:
        return int(round(self.params["subset_ratio"] * self.params["input_size"]))

    @property
    def overlap(self) -> int:
        return int(self.params["overlap_ratio"] * self.subset_size)

    @property
    def span(self) -> int:
        return 2 * self.subset_size - self.overlap

    def layers(self, model):
        if self.single_module:
            return [(model[1], 2, 1)]
        n, h = self.params["input_size"], self.params["hidden_size"]
        return [(model[0], n, h), (model[1], h, 1)]

    def instance(self, seed: int) -> Subsets:
        if self.single_module:
            return Subsets(slice(0, 1), slice(1, 2))
        if self.protocol == "explainer":  # contiguous and disjoint, the same for every seed
            n = self.params["input_size"]
            return Subsets(slice(0, EXPLAINER_SPLIT), slice(EXPLAINER_SPLIT, n))
        rng = np.random.default_rng([seed, TASK_STREAM])
        o = int(rng.integers(0, self.params["input_size"] - self.span + 1))
        size = self.subset_size
        return Subsets(slice(o, o + size), slice(o + size - self.overlap, o + self.span))

    def train_inputs(self, rng, shape, out=None):
        return sample_ranges(rng, (*shape, self.params["input_size"]),
                             self.params["interpolation_range"], out=out)

    @property
    def uniform_width(self) -> int:
        return self.params["input_size"]

    def train_inputs_from(self, u, out):
        return map_ranges(u, self.params["interpolation_range"], out)

    def ab(self, inst: Subsets, x: np.ndarray):
        """The subset sums, in float32 for float32 x (training batches), else float64."""
        x = np.asarray(x)
        if x.dtype != np.float32:
            x = x.astype(np.float64)
        select = np.zeros((x.shape[-1], 2), dtype=x.dtype)  # one BLAS call for both sums
        select[inst.a, 0] = 1.0
        select[inst.b, 1] = 1.0
        with np.errstate(over="ignore"):  # near float32's top the sums overflow to inf
            ab = x @ select
        return ab[..., 0], ab[..., 1]

    def targets(self, inst: Subsets, x: np.ndarray) -> np.ndarray:
        a, b = self.ab(inst, x)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return OPS[self.params["op"]](a, b)[..., None]

    def eval_inputs(self):
        n, size = self.params["eval_size"], self.params["input_size"]
        out = {}
        for i, key in enumerate(("interpolation", "extrapolation")):
            rng = np.random.default_rng([EVAL_SEED, i])
            out[key] = sample_ranges(rng, (n, size), self.params[f"{key}_range"])
        return out

    def train_set(self, inst: Subsets, seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Protocol explainer's fixed training set of ``size`` examples, float32 inputs
        (size, n_in) and targets (size, 1): the first ``size`` draws of the seed's data
        stream ``[seed, DATA_STREAM]``, the suite's first batch of that size for the seed."""
        x = self.train_inputs(np.random.default_rng([seed, DATA_STREAM]), (size,))
        return x, self.targets(inst, x).astype(np.float32)

    def threshold(self, inst: Subsets, x: np.ndarray) -> float:
        """MSE of the eps-perturbed correct solution on x (the success bar); under protocol
        primer, [Primer]'s (`primer_threshold`); under protocol explainer, the MSE whose
        ``tf.nn.l2_loss`` on x is the explainer's figure `EXPLAINER_L2`."""
        if self.protocol == "explainer":
            return 2.0 * EXPLAINER_L2 / len(x)
        if self.protocol == "primer":
            return primer_threshold(self.params["op"], self.params["extrapolation_range"],
                                    self.params["eps"])
        a, b = self.ab(inst, x)
        e = self.params["eps"] * np.asarray(x, dtype=np.float64).sum(-1)
        op = OPS[self.params["op"]]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            y = op(a, b)
            worst = max(np.mean((op(a + e, b + s * e) - y) ** 2) for s in (1.0, -1.0))
        return float(worst)

    def metrics(self, seed):
        from models import reference

        best = seed.best_index
        interp, extrap = seed.errors["interpolation"], seed.errors["extrapolation"]
        threshold = self.threshold(seed.instance, seed.eval_sets["extrapolation"][0])
        solved = np.flatnonzero(extrap < threshold)
        diverged = seed.diverged
        sparsity = max(float(reference.sparsity_error(unit, p))
                       for unit, p in zip(seed.units, seed.best))
        return {
            "interpolation_mse": float(interp[best]),
            "extrapolation_mse": float(extrap[best]),
            "interpolation_normalised": normalised(interp[best], interp[0]),
            "extrapolation_normalised": normalised(extrap[best], extrap[0]),
            "threshold": threshold,
            "success": bool(not diverged and extrap[best] < threshold),
            "solved_at": int(seed.steps[solved[0]]) if len(solved) and not diverged else None,
            "selected_step": seed.selected_step,
            "sparsity_error": sparsity,
            "magnitude_curve": self.magnitude_curve(seed),
            **self.reinit_metrics(seed),
            **self.explainer_metrics(seed),
        }

    def explainer_metrics(self, seed) -> dict:
        """Under protocol explainer only: the test and training losses as the explainer
        prints them, ``tf.nn.l2_loss`` (half the sum of squared errors) of the selected (the
        last) model on the extrapolation set and on the seed's fixed training set."""
        if self.protocol != "explainer":
            return {}
        best, n = seed.best_index, self.params["eval_size"]
        out = {"test_l2_loss": float(0.5 * n * seed.errors["extrapolation"][best])}
        if "train" in seed.errors:
            out["train_l2_loss"] = float(0.5 * seed.extra["train_size"]
                                         * seed.errors["train"][best])
        return out

    def reinit_metrics(self, seed) -> dict:
        """With --param reinit or protocol primer only (records without are unchanged): how
        often and at which steps the seed was re-initialised (never for units that do not
        opt in)."""
        if self.reinit is None:
            return {}
        steps = seed.extra.get("reinit_steps", [])
        return {"reinitialisations": len(steps), "reinit_steps": list(steps)}

    def magnitude_curve(self, seed, samples: int = 1000) -> dict[str, list]:
        """MSE of the selected model on inputs U[c, c+1] for growing c ([NALU]'s first
        figure: which models keep working outside the training range). Computed with
        the numpy reference on the selected weights, so it is framework-free."""
        from models import reference

        low = min(lo for lo, _ in self.params["interpolation_range"])
        high = max(hi for _, hi in self.params["extrapolation_range"])
        if high <= low:  # extrapolation below interpolation: span both ranges
            ranges = (*self.params["interpolation_range"], *self.params["extrapolation_range"])
            low, high = min(lo for lo, _ in ranges), max(hi for _, hi in ranges)
        starts = np.linspace(low, 2 * high - low, 12)
        rng = np.random.default_rng([EVAL_SEED, 99])
        mse = []
        for c in starts:
            x = rng.uniform(c, c + (high - low) / 4, size=(samples, self.params["input_size"]))
            h = x
            for unit, p in zip(seed.units, seed.best):
                with np.errstate(all="ignore"):
                    h = reference.forward(unit, p, h)
            with np.errstate(all="ignore"):
                err = float(np.mean((h - self.targets(seed.instance, x)) ** 2))
            mse.append(err if np.isfinite(err) else None)
        return {"start": starts.tolist(), "width": (high - low) / 4, "mse": mse}


PROTOCOLS = ("suite", "primer", "explainer")
# How far [Primer]'s perturbed solutions lie from the exact one (export/single_layer_task/
# benchmark/generate_exp_thresholds.r:24-55): the success bar is the mean of its square
PRIMER_THRESHOLDS = {
    "add": lambda x0, x1, eps: -eps * (np.abs(x0) + np.abs(x1)),
    "sub": lambda x0, x1, eps: -eps * (np.abs(x0) + np.abs(x1)),
    "mul": lambda x0, x1, eps: ((1 - eps) ** 2 - 1) * x0 * x1,
    "div": lambda x0, x1, eps: ((1 - eps) / (1 + eps) - 1) * x0 / x1,
}
PRIMER_THRESHOLD_SAMPLES = 1_000_000  # as its script simulates them


@functools.cache
def primer_threshold(op: str, extrapolation_range: tuple, eps: float) -> float:
    """[Primer]'s success bar: the MSE of its perturbed solution for ``op`` with ``eps``
    over a fixed simulation of 10^6 input pairs from the extrapolation range (its script
    simulates in R with seed 1234; here numpy's generator, seeded apart from the
    evaluation sets, gives the same expectation to sampling precision, 0.3% or better)."""
    rng = np.random.default_rng([EVAL_SEED, 1234])
    x = sample_ranges(rng, (PRIMER_THRESHOLD_SAMPLES, 2), extrapolation_range).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return float(np.mean(PRIMER_THRESHOLDS[op](x[:, 0], x[:, 1], eps) ** 2))


def parse_reinit(value):
    """None (off) or (window, factor, level) from off/on/false/true, a bool or 3 numbers."""
    if isinstance(value, (bool, np.bool_)):
        value = "on" if value else "off"
    if isinstance(value, str) and value.lower() in ("true", "false", "on", "off"):
        if value.lower() in ("false", "off"):
            return None
        rule = Reinit()
    else:
        try:
            window, factor, level = value
            if isinstance(window, bool) or int(window) != window:
                raise ValueError
            rule = Reinit(int(window), float(factor), float(level))
        except (TypeError, ValueError):
            raise TaskError(f"bad reinit {value!r}; expected off, on or WINDOW,FACTOR,LEVEL "
                            f"(an even number of evaluations >= 2, then two numbers >= 0)"
                            ) from None
    return (rule.window, rule.factor, rule.level)

