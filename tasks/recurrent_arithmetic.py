"""Recurrent arithmetic [NALU, NAU]: the static task's a and b accumulated over a sequence.

Protocol (docs/tasks.md): every step brings a vector x_t
of size 10 (``input_size``); a is the sum over the sequence of the static task's first
subset of x_t, b of its second (subsets as in the static task: ratio 0.25, overlap 0.5,
offset fixed per seed), and the target is op(a, b), seen once at the end. Training
sequences have length 10 (``train_length``) with values from ``interpolation_range``;
the model is tested on the fixed interpolation set (length 10, selects the model) and
on longer sequences (``test_lengths``, default 100 and 1000) with values from
``extrapolation_range``. The extrapolation here is in length: both ranges default to
U[1, 2] (verified from [NAU]'s code: ``fork(seq_length=10)`` for training and
interpolation, ``fork(seq_length=1000)`` for extrapolation, ``input_range=[1, 2]``).

Model grammar (``check_model``): ``CELL-UNIT`` - a recurrent cell from the cell registry
(lstm, gru, rnn_tanh, rnn_relu, mclstm, nac, nalu, nau, nmu) reads the sequence and a
feed-forward unit from the unit registry maps its last hidden state to the output, e.g.
``nau-nmu``, ``lstm-linear``. A bare ``CELL`` is ``CELL-CELL`` when the cell is an
arithmetic unit (``nau`` = ``nau-nau``) and ``CELL-linear`` otherwise (``lstm``). Every
cell has ``hidden_size`` = 2 units (exactly a and b), the LSTM included, as in [NAU]'s
code (which also learns the initial state; here it is zero, the right one for add/sub).

Metrics, per seed and per evaluated length L (10 and each test length): ``mse_L`` of the
selected model (inf where its output overflowed to inf or NaN), ``normalised_L`` (error over the
untrained model's, x100, [NALU]: 0 perfect, 100 untrained), ``threshold_L`` (the
success bar), ``success_L`` and ``solved_at_L`` (first evaluated step under the bar).
The headline numbers are the longest length's:
``extrapolation_mse`` and ``success`` are at length 1000 (by default), and
``interpolation_mse`` is on the length-10 interpolation set. The success bar is the
static task's, applied to the summed sequence sum_t x_t: the MSE of the correct solution
with every input weight off by eps = 1e-5.

``protocol=mclstm`` (set by ``--budget mclstm``) is the protocol of the MC-LSTM authors'
fork of stable-nalu, the one with published numbers (docs/recurrent-protocol.md, every
setting with its file and line): validation at length 20, test at length 100 and a
range test on U[2, 6] at length 10 (``extrapolation_range``), 1000 sequences per set,
hidden sizes per model and op (`protocol_hidden`), the sparsity regulariser 0 -> 10 over
steps 1e6..2e6 (`protocol_lams`), no divergence rule, and its export script's success
rule (`export_selection`, `protocol_threshold`).
"""
from __future__ import annotations

import functools

import numpy as np

from tasks import limits
from tasks.base import EVAL_SEED, Task, TaskError, normalised, sample_ranges
from tasks.static_arithmetic import StaticArithmetic, Subsets

OPS = ("add", "sub", "mul", "div")
# What `run` trains when no --units are given: per op, an LSTM and RNN baseline against
# the arithmetic cells [NALU, NAU] compare.
DEFAULT_MATRIX = {
    "add": ("lstm", "rnn_relu", "nac", "nalu", "nau"),
    "sub": ("lstm", "rnn_relu", "nac", "nalu", "nau"),
    "mul": ("lstm", "nalu", "nau-nmu", "nac-nacmul"),
    "div": ("lstm", "nalu", "nac-nacmul"),
}
DEFAULT_OPS = ("add",)  # the quick budget's matrix; --ops add,sub,mul for more

PROTOCOLS = ("suite", "mclstm")
# The MC-LSTM fork's table-2 matrix (mclstm_table2.sh): per op the models it trains, as
# this suite names them. Its MulMCLSTM (MC-LSTM with a multiplicative output layer) has
# no counterpart here, so mul has no MC-LSTM.
MCLSTM_MATRIX = {
    "add": ("mclstm", "lstm", "nau", "nac", "nalu"),
    "sub": ("mclstm", "lstm", "nau", "nac", "nalu"),
    "mul": ("lstm", "nau-nmu", "nac-nacmul", "nalu"),
}
# What protocol mclstm fixes (experiments/simple_function_recurrent.py): other values of
# these parameters are refused; the suite's defaults are replaced by them.
MCLSTM_PARAMS = {
    "input_size": 10, "subset_ratio": 0.25, "overlap_ratio": 0.5,
    "interpolation_range": ((1.0, 2.0),), "extrapolation_range": ((2.0, 6.0),),
    "train_length": 10, "test_lengths": (20, 100), "eval_size": 1000, "eps": 1e-5,
}
MCLSTM_STEPS = 2_000_000  # --max-iterations of mclstm_table2.sh
MCLSTM_SPARSITY = (10.0, 1_000_000, 2_000_000)  # --regualizer, its linear ramp start, end
SUITE_SCHEDULE_STEPS = 5_000_000  # the suite's budgets scale schedules given for 5e6 steps
MCLSTM_BEST_RANGE = 2000  # export/function_task_recurrent.r: best.range
MCLSTM_THRESHOLD_SAMPLES = 10_000  # function_task_recurrent_mse_expectation.r


def protocol_hidden(cell: str, op: str, default: int) -> int:
    """The fork's hidden size per model and op (mclstm_table2.sh): LSTM 10 on sub and mul,
    MC-LSTM 3 on sub, every other model the default 2."""
    if cell == "lstm" and op in ("sub", "mul"):
        return 10
    if cell == "mclstm" and op == "sub":
        return 3
    return default


def sparsity_ramp(steps, scale: float = 1.0) -> np.ndarray:
    """The fork's sparsity weight per step: 0 until 1e6, linear to 10 at 2e6, then 10
    (its r_w_scale times --regualizer); ``scale`` shrinks the ramp for shorter budgets."""
    lam, start, end = MCLSTM_SPARSITY
    steps = np.asarray(steps, dtype=np.float64)
    return lam * np.clip((steps - start * scale) / ((end - start) * scale), 0.0, 1.0)


def export_selection(interpolation: np.ndarray, best_range: int = MCLSTM_BEST_RANGE) -> int:
    """The export script's selected evaluation: the lowest interpolation error among the
    last ``best_range`` evaluations, NaN ignored; the last evaluation when all are NaN."""
    err = np.asarray(interpolation, dtype=np.float64)
    first = max(len(err) - best_range, 0)
    tail = err[first:]
    if np.isnan(tail).all():
        return len(err) - 1
    return first + int(np.nanargmin(tail))


def protocol_threshold(op: str, length: int = 100, samples: int = MCLSTM_THRESHOLD_SAMPLES,
                       eps: float = 1e-5) -> float:
    """The fork's success bar (export/function_task_recurrent_mse_expectation.r, its
    'default' case): the MSE, over ``samples`` sequences of ``length`` steps of U[1, 2]
    with 10 inputs, of the correct recurrent solution with every input weight off by eps
    (eps where 0, 1 - eps where 1) and the recurrent weights (1 - eps) I. Its subsets are
    the script's as written: R's a.start:a.end is inclusive, so a = x[0:3] and b = x[2:5]
    (3 inputs each, overlap 1), one more than the data's. The script draws without a seed;
    here a fixed one (the sampling error is well under 1%)."""
    return _protocol_threshold(op, length, samples, eps)


@functools.cache
def _protocol_threshold(op, length, samples, eps):
    rng = np.random.default_rng([EVAL_SEED, 2021])
    x = rng.uniform(1.0, 2.0, size=(length, samples, 10))

    def run(e):
        w = np.full((10, 2), e)
        w[0:3, 0] = 1 - e
        w[2:5, 1] = 1 - e
        z = np.zeros((samples, 2))
        for t in range(length):
            z = x[t] @ w + (1 - e) * z
        a, b = z[:, 0], z[:, 1]
        return {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}[op]

    return float(np.mean((run(eps) - run(0.0)) ** 2))


def parse_model(model: str) -> tuple[str, str]:
    """``nau-nmu`` -> (nau, nmu); ``nau`` -> (nau, nau); ``lstm`` -> (lstm, linear)."""
    from models import reference, registry

    parts = model.split("-") if isinstance(model, str) else []
    if len(parts) not in (1, 2) or not all(parts):
        raise registry.UnknownName(
            f"bad model {model!r} for recurrent_arithmetic; use CELL or CELL-UNIT with a cell "
            f"from: {', '.join(registry.CELL_NAMES)} and a unit from: "
            f"{', '.join(registry.UNIT_NAMES)}")
    cell = registry.check_cell(parts[0])
    if len(parts) == 2:
        out = parts[1]
        if out not in reference.UNITS:
            raise registry.UnknownName(f"unknown output unit {out!r} in model {model!r}; "
                                       f"known: {', '.join(registry.UNIT_NAMES)}")
    else:
        out = cell if cell in reference.UNITS else "linear"
    return cell, out


class RecurrentArithmetic(Task):
    name = "recurrent_arithmetic"
    loop = "models.sequence"
    parameters = {
        "op": "add",
        "input_size": 10,
        "subset_ratio": 0.25,
        "overlap_ratio": 0.5,
        "interpolation_range": (1.0, 2.0),
        "extrapolation_range": (1.0, 2.0),
        "train_length": 10,
        "test_lengths": (100, 1000),
        "hidden_size": 2,
        "eval_size": 500,
        "eps": 1e-5,
        # suite (default) or mclstm (the MC-LSTM authors' protocol; --budget mclstm)
        "protocol": "suite",
    }
    # left out of specs while default, so record ids made before stay valid
    omitted_when_off = ("protocol",)
    default_models = tuple(dict.fromkeys(m for ms in DEFAULT_MATRIX.values() for m in ms))
    budgets = {
        # seconds: CI runs the whole benchmark file in both frameworks
        "smoke": {"steps": 1000, "eval_interval": 250, "seeds": 4, "lr": 1e-2},
        # the README's command: the add matrix, both frameworks, in about two minutes
        "quick": {"steps": 2000, "eval_interval": 500, "seeds": 8, "lr": 1e-2},
        "paper": {"steps": 500_000, "eval_interval": 5000, "seeds": 10},
    }

    @classmethod
    def defaults(cls, grid, budget):
        """Per op (--ops, default add only), the cells compared on it; at the ``mclstm``
        budget, per op (default add, sub, mul) the fork's table-2 models."""
        if budget == "mclstm":
            return [({"op": op, "protocol": "mclstm"}, MCLSTM_MATRIX.get(op, ()))
                    for op in grid.get("op", tuple(MCLSTM_MATRIX))]
        return [({"op": op}, DEFAULT_MATRIX.get(op, DEFAULT_MATRIX["add"]))
                for op in grid.get("op", DEFAULT_OPS)]

    def validate(self) -> None:
        p = self.params
        if not isinstance(p["op"], str) or p["op"] not in OPS:
            raise TaskError(f"unknown op {p['op']!r} for recurrent_arithmetic; known: "
                            f"{', '.join(OPS)}")
        if p["protocol"] not in PROTOCOLS:
            raise TaskError(f"unknown protocol {p['protocol']!r}; known: {', '.join(PROTOCOLS)}")
        if p["protocol"] == "suite":  # the default: left out of the spec
            del p["protocol"]
        else:
            self._protocol_params()
        # the subsets, ranges and eps are the static task's, checked by it
        self.static = StaticArithmetic(**{k: p[k] for k in (
            "op", "input_size", "subset_ratio", "overlap_ratio", "interpolation_range",
            "extrapolation_range", "eps")}, eval_size=1)
        for key in ("interpolation_range", "extrapolation_range"):
            p[key] = self.static.params[key]
        for key in ("train_length", "hidden_size", "eval_size"):
            if isinstance(p[key], bool) or not isinstance(p[key], (int, np.integer)) \
                    or p[key] < 1:
                raise TaskError(f"bad {key} {p[key]!r}; expected a positive integer")
        lengths = p["test_lengths"]
        if isinstance(lengths, (int, np.integer)) and not isinstance(lengths, bool):
            lengths = (lengths,)
        if not isinstance(lengths, (list, tuple)) or not lengths or not all(
                isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1
                for n in lengths):
            raise TaskError(f"bad test_lengths {p['test_lengths']!r}; expected positive "
                            f"integers, e.g. 100,1000")
        p["test_lengths"] = tuple(sorted({int(n) for n in lengths}))
        limits.length(p["train_length"], "train_length")
        limits.length(p["test_lengths"][-1], "test_lengths")

    def _protocol_params(self) -> None:
        """Protocol mclstm: the parameters it fixes take its values; a parameter set to
        anything but the suite's default or the protocol's value is refused."""
        p = self.params
        if p["op"] not in MCLSTM_MATRIX:
            raise TaskError(f"protocol mclstm runs ops {', '.join(MCLSTM_MATRIX)} (its "
                            f"table-2 script), not {p['op']!r}")
        for key, value in MCLSTM_PARAMS.items():
            try:
                given = np.ravel(np.asarray(p[key], dtype=float)).tolist()
            except (TypeError, ValueError):
                given = None
            if given not in (np.ravel(value).tolist(),
                             np.ravel(self.parameters[key]).tolist()):
                raise TaskError(f"protocol mclstm fixes {key}={value!r} (the fork's); "
                                f"drop --param {key}")
            p[key] = value
        if p["hidden_size"] != self.parameters["hidden_size"]:
            raise TaskError("protocol mclstm sets the hidden size per model and op "
                            "(mclstm_table2.sh); drop --param hidden_size")

    @property
    def protocol(self) -> str:
        return self.params.get("protocol", "suite")

    def footprint(self, batch_size, replicas):
        """Every evaluation set (float32, and the framework's copy), two training buffers,
        and the weights of a cell with gates (4 x hidden) with gradients and Adam's moments."""
        p, n, h = self.params, self.params["input_size"], self.params["hidden_size"]
        lengths = sum(self.lengths.values())
        step = replicas * batch_size * p["train_length"] * n * 4
        return {
            f"evaluation sets (eval_size={p['eval_size']} x lengths {lengths} in all x "
            f"input_size={n})": 8.0 * p["eval_size"] * lengths * n,
            f"training batches ({replicas} seed(s) x batch {batch_size} x train_length="
            f"{p['train_length']} x input_size={n})": 2.0 * max(step, 32 << 20),
            f"weights ({replicas} seed(s), hidden_size={h})": 64.0 * replicas * h * (n + h),
        }

    @property
    def lengths(self) -> dict[str, int]:
        """Evaluation set -> sequence length; the first selects, the last is the headline.
        Protocol mclstm adds ``range``: length train_length on the extrapolation range."""
        out = {"interpolation": self.params["train_length"],
               **{f"length_{n}": n for n in self.params["test_lengths"]}}
        if self.protocol == "mclstm":
            out["range"] = self.params["train_length"]
        return out

    def range_of(self, name: str):
        """The value range an evaluation set draws from: the extrapolation range for the
        long sequences (suite) or for the range test only (protocol mclstm)."""
        extrapolate = name == "range" if self.protocol == "mclstm" else name != "interpolation"
        return self.params["extrapolation_range" if extrapolate else "interpolation_range"]

    @property
    def watch(self) -> tuple[str, ...]:
        """Sets whose non-finite error marks a replica diverged: the interpolation set, or
        none under protocol mclstm (the fork has no such rule)."""
        return () if self.protocol == "mclstm" else ("interpolation",)

    def regulariser_weights(self, units, cfg, steps) -> np.ndarray | None:
        """(T, layers) lambdas under protocol mclstm: the fork's sparsity ramp
        (`sparsity_ramp`) on every regularised unit, its 1e6..2e6 steps scaled by the
        budget's length against the fork's 2e6; None (the units' own schedules) otherwise."""
        from models import reference

        if self.protocol != "mclstm":
            return None
        scale = min(1.0, cfg.schedule_scale * SUITE_SCHEDULE_STEPS / MCLSTM_STEPS)
        out = np.zeros((len(steps), len(units)), dtype=np.float32)
        for j, unit in enumerate(units):
            if unit and reference.UNITS[unit].regularised:
                out[:, j] = sparsity_ramp(steps, scale)
        return out

    def check_model(self, model: str) -> None:
        parse_model(model)

    def parse(self, model: str) -> tuple[str, str]:
        """(cell, output unit) of a model name; see the grammar above."""
        return parse_model(model)

    def layers(self, model):
        """[(cell, n_in, hidden), (output unit, hidden, 1)]."""
        cell, out = model
        hidden = self.params["hidden_size"]
        if self.protocol == "mclstm":
            hidden = protocol_hidden(cell, self.params["op"], hidden)
        return [(cell, self.params["input_size"], hidden), (out, hidden, 1)]

    def instance(self, seed: int) -> Subsets:
        return self.static.instance(seed)

    def train_inputs(self, rng, shape, out=None):
        """(*shape, train_length, input_size) values from the interpolation range."""
        return sample_ranges(rng, (*shape, self.params["train_length"],
                                   self.params["input_size"]),
                             self.params["interpolation_range"], out=out)

    def targets(self, inst: Subsets, x: np.ndarray) -> np.ndarray:
        """op(a, b) of sequences x (..., T, input_size): a, b summed over time and subset."""
        return self.static.targets(inst, np.asarray(x).sum(axis=-2))

    def eval_targets(self, inst: Subsets, x: np.ndarray) -> np.ndarray:
        """Targets of a fixed set, summed in float64 without a float64 copy of x."""
        return self.static.targets(inst, np.asarray(x).sum(axis=-2, dtype=np.float64))

    def eval_inputs(self) -> dict[str, np.ndarray]:
        """Fixed sets (eval_size, T, input_size), float32, one per length."""
        n, size = self.params["eval_size"], self.params["input_size"]
        out = {}
        for i, (name, length) in enumerate(self.lengths.items()):
            rng = np.random.default_rng([EVAL_SEED, 10 + i])
            out[name] = sample_ranges(rng, (n, length, size), self.range_of(name))
        return out

    def threshold(self, inst: Subsets, x: np.ndarray) -> float:
        """The static success bar on the summed sequences."""
        return self.static.threshold(inst, np.asarray(x).sum(axis=-2, dtype=np.float64))

    def metrics(self, seed):
        """Headline numbers (see the module docstring) plus, per evaluated length L,
        ``mse_L``, ``normalised_L``, ``threshold_L``, ``success_L`` and ``solved_at_L``."""
        if self.protocol == "mclstm":
            return self.protocol_metrics(seed)
        from models import reference

        best = seed.best_index
        diverged = seed.diverged
        out: dict = {}
        for name, length in self.lengths.items():
            err = seed.errors[name]
            bar = self.threshold(seed.instance, seed.eval_sets[name][0])
            with np.errstate(invalid="ignore"):
                solved = np.flatnonzero(err < bar)
            mse = float(err[best])
            if not diverged and not np.isfinite(mse):
                mse = float("inf")  # an output that overflowed (inf or nan) is infinitely wrong
            out[f"mse_{length}"] = mse
            out[f"normalised_{length}"] = normalised(err[best], err[0])
            out[f"threshold_{length}"] = bar
            out[f"success_{length}"] = bool(not diverged and err[best] < bar)
            out[f"solved_at_{length}"] = (int(seed.steps[solved[0]]) if len(solved)
                                          and not diverged else None)
        train, last = self.params["train_length"], self.params["test_lengths"][-1]
        cell, unit = seed.units
        sparsity = None
        if reference.CELLS[cell].unit:  # only arithmetic models have a "correct" 0/1 weight
            layers = (reference.CELLS[cell].unit, unit)
            sparsity = max(float(reference.sparsity_error(u, p))
                           for u, p in zip(layers, seed.best))
        return {
            "interpolation_mse": out[f"mse_{train}"],
            "extrapolation_mse": out[f"mse_{last}"],
            "interpolation_normalised": out[f"normalised_{train}"],
            "extrapolation_normalised": out[f"normalised_{last}"],
            "threshold": out[f"threshold_{last}"],
            "success": out[f"success_{last}"],
            "solved_at": out[f"solved_at_{last}"],
            "headline_length": last,
            "selected_step": seed.selected_step,
            "sparsity_error": sparsity,
            **out,
        }

    def protocol_metrics(self, seed):
        """Protocol mclstm, as its export script reads a run (export/function_task_recurrent.r):
        the evaluation selected by `export_selection`; ``success`` where the length-100
        error there is under `protocol_threshold` (NaN: a failure), ``range_success`` the
        same for the range test (with the same bar, as the script does); ``solved_at`` the
        first evaluated step under the bar at length 100. Per set S (interpolation,
        length_20, length_100, range): ``mse_S`` and ``normalised_S`` at the selection."""
        from models import reference

        steps = seed.steps
        best = export_selection(seed.errors["interpolation"])
        bar = protocol_threshold(self.params["op"], eps=self.params["eps"])
        out: dict = {}
        for name in self.lengths:
            err = seed.errors[name]
            out[f"mse_{name}"] = float(err[best])
            out[f"normalised_{name}"] = normalised(err[best], err[0])
            with np.errstate(invalid="ignore"):
                solved = np.flatnonzero(err < bar)
            out[f"solved_at_{name}"] = int(steps[solved[0]]) if len(solved) else None
        with np.errstate(invalid="ignore"):
            success = bool(seed.errors["length_100"][best] < bar)
            range_success = bool(seed.errors["range"][best] < bar)
        cell, unit = seed.units
        sparsity = None
        # the weights kept are those of the engine's selection (the lowest interpolation
        # error over every evaluation); the export's differs only when it excludes step 0
        if reference.CELLS[cell].unit and seed.best_index == best:
            layers = (reference.CELLS[cell].unit, unit)
            sparsity = max(float(reference.sparsity_error(u, p))
                           for u, p in zip(layers, seed.best))
        return {
            "interpolation_mse": out["mse_interpolation"],
            "extrapolation_mse": out["mse_length_100"],
            "interpolation_normalised": out["normalised_interpolation"],
            "extrapolation_normalised": out["normalised_length_100"],
            "threshold": bar,
            "success": success,
            "range_success": range_success,
            "solved_at": out["solved_at_length_100"],
            "headline_length": 100,
            "selected_step": int(steps[best]),
            "hidden_size": self.layers((cell, unit))[0][2],
            "sparsity_error": sparsity,
            **out,
        }
