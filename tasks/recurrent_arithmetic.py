"""Recurrent arithmetic [NALU, NAU]: the static task's a and b accumulated over a sequence.

Protocol (shared/PROTOCOLS.md, "Recurrent arithmetic"): every step brings a vector x_t
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
"""
from __future__ import annotations

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
    }
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
        """Per op (--ops, default add only), the cells compared on it."""
        return [({"op": op}, DEFAULT_MATRIX.get(op, DEFAULT_MATRIX["add"]))
                for op in grid.get("op", DEFAULT_OPS)]

    def validate(self) -> None:
        p = self.params
        if not isinstance(p["op"], str) or p["op"] not in OPS:
            raise TaskError(f"unknown op {p['op']!r} for recurrent_arithmetic; known: "
                            f"{', '.join(OPS)}")
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
        """Evaluation set -> sequence length; the first selects, the last is the headline."""
        return {"interpolation": self.params["train_length"],
                **{f"length_{n}": n for n in self.params["test_lengths"]}}

    def check_model(self, model: str) -> None:
        parse_model(model)

    def parse(self, model: str) -> tuple[str, str]:
        """(cell, output unit) of a model name; see the grammar above."""
        return parse_model(model)

    def layers(self, model):
        """[(cell, n_in, hidden), (output unit, hidden, 1)]."""
        cell, out = model
        hidden = self.params["hidden_size"]
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
            key = "interpolation_range" if name == "interpolation" else "extrapolation_range"
            out[name] = sample_ranges(rng, (n, length, size), self.params[key])
        return out

    def threshold(self, inst: Subsets, x: np.ndarray) -> float:
        """The static success bar on the summed sequences."""
        return self.static.threshold(inst, np.asarray(x).sum(axis=-2, dtype=np.float64))

    def metrics(self, seed):
        """Headline numbers (see the module docstring) plus, per evaluated length L,
        ``mse_L``, ``normalised_L``, ``threshold_L``, ``success_L`` and ``solved_at_L``."""
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
