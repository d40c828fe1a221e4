"""MNIST counting and MNIST addition [NALU] [NAU]: a sequence of digit images, one answer.

Protocol (docs/tasks.md): a CNN reads each image,
a recurrent core (a cell of `models.reference.CELLS`: lstm, gru, rnn_relu, nac, nalu,
nau, ...) accumulates, and the output after the last image is the answer:
- ``mnist_counting``: 10 outputs, how many images of each class the sequence holds;
- ``mnist_addition``: 1 output, the sum of the digits.
Training sequences have length 10 (``train_length``) and are drawn afresh every step
from the training images; the fixed test sequences (``test_sequences`` = 500 of each length,
the same for every seed) are drawn from the test images only, at length 10 and at each
of ``test_lengths`` (100 and 1000; ``test_lengths=nau`` gives [NAU]'s 1, 10, 100, 200,
..., 1000). Images: `tasks.digits` (MNIST if on the machine, else scikit-learn's 8x8
digits; every record says which and how many).

Metrics, per test length L (``accuracy_L``, ``mae_L``, ``mse_L``, ``relative_error_L``
and the lists in ``per_length``): accuracy of the rounded output (counting: all ten
counts right), mean absolute error per output, and the MAE relative to the mean |target|.
- ``interpolation_mse``: MSE at the training length on test images;
- ``extrapolation_mse``: MSE at the first test length beyond the training length (100);
- ``success``: relative error at that length <= ``success_error`` (10%). Not
  the exact accuracy: all counts of 100 images are right only if nearly every image is
  classified right (p^100 for a per-image accuracy p), so exact accuracy measures the CNN
  at least as much as the accumulator; the relative error says whether the core keeps
  accumulating 10x past its training length.
The model is selected at the evaluation with the lowest interpolation MSE, as in the
static task; ``baseline_mse_L`` is the MSE of the best constant at that length (the
mean target), which a model that learned anything beats at the training length.
``normalised_L`` is [NALU]'s normalised error (`tasks.base.normalised`): the MSE at
length L as a percentage of the untrained network's (same seed, same test sequences;
100 = no better than before training, 0 = exact); ``interpolation_normalised`` and
``extrapolation_normalised`` are those at the training length and at the headline length.
"""
from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from tasks import digits, limits
from tasks.base import EVAL_SEED, Task, TaskError, normalised

NAU_LENGTHS = (1, 10, *range(100, 1001, 100))
DEFAULT_MODELS = ("lstm", "nac", "nau")


class DigitSequences(Task):
    """What counting and addition share; a subclass sets ``name``, ``n_out`` and
    ``answer``."""

    loop = "models.image_sequence"
    n_out = 1
    parameters = {
        "train_length": 10,
        "test_lengths": (100, 1000),
        "test_sequences": 500,
        "source": "auto",
        "hidden_size": 32,  # classic cells; an arithmetic cell's state is the answer itself
        "success_error": 0.1,
        # image side: auto (the images' own: 28 for MNIST, 8 for scikit-learn's digits),
        # 28, or 8 (MNIST downsampled, `digits.downsample`); auto is left out of the spec
        "side": "auto",
    }
    default_models = DEFAULT_MODELS
    omitted_when_off = ("side",)  # left out of specs while auto (reports: reports/frame.py)
    # steps are sequences-batches; a step reads batch_size x train_length images
    budgets = {
        "smoke": {"steps": 500, "eval_interval": 250, "batch_size": 16, "seeds": 1,
                  "lr": 1e-2},
        "quick": {"steps": 1000, "eval_interval": 250, "batch_size": 16, "seeds": 1,
                  "lr": 1e-2},
        "paper": {"steps": 100_000, "eval_interval": 1_000, "batch_size": 64, "seeds": 10,
                  "lr": 1e-3},
    }

    def validate(self) -> None:
        p = self.params
        if isinstance(p["test_sequences"], bool) or not isinstance(
                p["test_sequences"], (int, np.integer)) or p["test_sequences"] < 1:
            raise TaskError(f"bad test_sequences {p['test_sequences']!r}; expected a positive "
                            f"integer")
        value = p["success_error"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
                or not np.isfinite(value):
            raise TaskError(f"bad success_error {value!r}; expected a finite number > 0 "
                            f"(a relative error, e.g. 0.1)")
        self.check_lengths_and_images()

    def check_lengths_and_images(self) -> None:
        """The checks every digit-sequence task shares: lengths, hidden size, source, side."""
        p = self.params
        for key in ("train_length", "hidden_size"):
            if isinstance(p[key], bool) or not isinstance(p[key], (int, np.integer)) \
                    or p[key] < 1:
                raise TaskError(f"bad {key} {p[key]!r}; expected a positive integer")
        lengths = p["test_lengths"]
        if isinstance(lengths, str):
            if lengths != "nau":
                raise TaskError(f"bad test_lengths {lengths!r}; expected lengths such as "
                                f"100,1000 or 'nau' for {','.join(map(str, NAU_LENGTHS))}")
            lengths = NAU_LENGTHS
        lengths = np.atleast_1d(np.asarray(lengths, dtype=object))
        if len(lengths) == 0 or not all(isinstance(v, (int, np.integer))
                                        and not isinstance(v, bool) and v >= 1
                                        for v in lengths):
            raise TaskError(f"bad test_lengths {p['test_lengths']!r}; expected positive "
                            f"integers such as 100,1000 or 'nau'")
        if not isinstance(p["test_lengths"], str):
            p["test_lengths"] = tuple(int(v) for v in lengths)
        if p["source"] not in digits.SOURCES:
            raise TaskError(f"unknown source {p['source']!r}; known: "
                            f"{', '.join(digits.SOURCES)}")
        limits.length(p["train_length"], "train_length")
        limits.length(max(self.test_lengths), "test_lengths")
        side = p["side"]
        if isinstance(side, bool) or side not in ("auto", digits.MNIST_SIDE, digits.SKLEARN_SIDE):
            raise TaskError(f"bad side {side!r}; expected auto, {digits.MNIST_SIDE} (MNIST's "
                            f"own) or {digits.SKLEARN_SIDE} (MNIST downsampled, or "
                            f"scikit-learn's digits)")
        if side == "auto":
            del p["side"]  # as before the parameter existed, so record ids stay valid
        elif side == digits.MNIST_SIDE and p["source"] == "sklearn":
            raise TaskError(f"side={side} needs MNIST; scikit-learn's digits are "
                            f"{digits.SKLEARN_SIDE}x{digits.SKLEARN_SIDE}")
        else:
            p["side"] = int(side)

    @classmethod
    def defaults(cls, grid, budget):
        """The quick budget's matrix reads MNIST, when this machine has it, downsampled to
        8x8 (side=8): the 28x28 CNN would take the quick command past its 15 minutes
        (docs/failures.md has the measurement). --param side=28 or
        --units keep the full images; smoke and paper read them as they are."""
        wants_mnist = grid.get("source", ["auto"])[0] != "sklearn"
        if budget == "quick" and "side" not in grid and wants_mnist \
                and digits.find_mnist() is not None:
            return [({"side": digits.SKLEARN_SIDE}, cls.default_models)]
        return [({}, cls.default_models)]

    def preflight(self, batch_size, replicas):
        """The digits are loaded and checked here (a bad MNIST file is refused before any
        training), then the memory estimate."""
        self.digits  # noqa: B018 (loads and checks the files; DigitsError names the bad one)
        super().preflight(batch_size, replicas)

    def footprint(self, batch_size, replicas):
        """Test sequences (indices and labels), one step's CNN activations (forward and
        backward), the test images' features."""
        p, side = self.params, self.digits.side
        channels = 20 if side == digits.MNIST_SIDE else 8
        per_image = side * side * channels * 4 * 4
        return {
            f"test sequences (test_sequences={p['test_sequences']} x lengths "
            f"{sum(self.eval_lengths)} in all)":
                24.0 * p["test_sequences"] * sum(self.eval_lengths),
            f"CNN activations (batch {batch_size} x train_length={p['train_length']} "
            f"images of {side}x{side})": float(batch_size * p["train_length"] * per_image),
            f"core states (test_sequences={p['test_sequences']}, hidden_size="
            f"{p['hidden_size']})": 64.0 * min(p["test_sequences"], 1000) * p["hidden_size"],
        }

    def check_model(self, model: str) -> None:
        """A model is the recurrent core's cell name."""
        from models import registry

        if model not in registry.CELL_NAMES:
            raise registry.UnknownName(
                f"model {model!r} cannot be the recurrent core of {self.name}; known: "
                f"{', '.join(registry.CELL_NAMES)}")

    # protocol
    @property
    def test_lengths(self) -> tuple[int, ...]:
        lengths = self.params["test_lengths"]
        return tuple(NAU_LENGTHS if lengths == "nau" else
                     (int(v) for v in np.atleast_1d(lengths)))

    @property
    def headline_length(self) -> int:
        """The length success and extrapolation_mse are measured at: the first test length
        beyond the training length (100 by default and in [NAU]'s list), else the longest."""
        longer = [L for L in self.test_lengths if L > self.params["train_length"]]
        return longer[0] if longer else max(self.test_lengths)

    @property
    def eval_lengths(self) -> tuple[int, ...]:
        """The training length first (it selects the model), then the test lengths."""
        return tuple(dict.fromkeys((self.params["train_length"], *self.test_lengths)))

    @cached_property
    def digits(self) -> digits.Digits:
        images = digits.load(self.params["source"])
        side = self.params.get("side")
        if side == digits.SKLEARN_SIDE:
            return digits.downsample(images)
        if side == digits.MNIST_SIDE and images.side != side:
            raise digits.DigitsError(f"side={side} needs MNIST, but the digits found are "
                                     f"{images.text()}")
        return images

    def hidden(self, cell: str) -> int:
        from models import reference

        return self.n_out if reference.CELLS[cell].unit else self.params["hidden_size"]

    def answer(self, labels: np.ndarray) -> np.ndarray:
        """Labels (..., T) -> targets (..., n_out), float32."""
        raise NotImplementedError

    def train_batch(self, rng: np.random.Generator, steps: int,
                    batch: int) -> tuple[np.ndarray, np.ndarray]:
        """(steps, batch, T) indices into the training images and their targets."""
        n = len(self.digits.train_labels)
        idx = rng.integers(0, n, size=(steps, batch, self.params["train_length"]),
                           dtype=np.int64).astype(np.int32)
        return idx, self.answer(self.digits.train_labels[idx])

    @cached_property
    def eval_sets(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per length, the fixed (N, L) indices into the test images and their targets."""
        n, out = len(self.digits.test_labels), {}
        for length in self.eval_lengths:
            rng = np.random.default_rng([EVAL_SEED, length])
            idx = rng.integers(0, n, size=(self.params["test_sequences"], length),
                               dtype=np.int64).astype(np.int32)
            out[length] = (idx, self.answer(self.digits.test_labels[idx]).astype(np.float64))
        return out

    def metrics(self, seed) -> dict[str, Any]:
        """Per length: accuracy of the rounded output, MAE, MSE; the headline numbers, from
        the selected network's predictions per length (``seed.best``)."""
        predictions, selected_step, diverged = seed.best, seed.selected_step, seed.diverged
        untrained = self.untrained_mse(seed)
        per = {"length": [], "accuracy": [], "mae": [], "mse": [], "relative_error": [],
               "baseline_mse": [], "normalised": []}
        flat: dict[str, Any] = {}
        for length, pred in predictions.items():
            y = self.eval_sets[length][1]
            with np.errstate(all="ignore"):
                err = np.asarray(pred, dtype=np.float64) - y
                right = np.all(np.round(pred) == y, axis=-1)
                values = {"accuracy": float(np.mean(right)),
                          "mae": float(np.mean(np.abs(err))),
                          "mse": float(np.mean(err ** 2)),
                          "relative_error": float(np.mean(np.abs(err)) / np.mean(np.abs(y))),
                          "baseline_mse": float(np.mean((y - y.mean(axis=0)) ** 2))}
                values["normalised"] = normalised(values["mse"], untrained.get(length))
            per["length"].append(length)
            for key, value in values.items():
                value = value if np.isfinite(value) else None
                per[key].append(value)
                flat[f"{key}_{length}"] = value
        first = self.headline_length
        train = self.params["train_length"]
        rel = flat[f"relative_error_{first}"]
        nan = float("nan")
        return {
            "interpolation_mse": nan if flat[f"mse_{train}"] is None else flat[f"mse_{train}"],
            "extrapolation_mse": nan if flat[f"mse_{first}"] is None else flat[f"mse_{first}"],
            "interpolation_normalised": _nan(flat[f"normalised_{train}"]),
            "extrapolation_normalised": _nan(flat[f"normalised_{first}"]),
            "success": bool(not diverged and rel is not None
                            and rel <= self.params["success_error"]),
            "selected_step": int(selected_step),
            **flat,
            "per_length": per,
            **self.digits.describe(),
        }


    def untrained_mse(self, seed) -> dict[int, float]:
        """Per length, the MSE of the seed's untrained network: the engine's evaluation at
        step 0 for the training and headline lengths (``seed.errors``), the loop's
        ``seed.extra["untrained_mse"]`` for the other test lengths."""
        out = dict(seed.extra.get("untrained_mse", {}))
        for name, length in (("interpolation", self.params["train_length"]),
                             ("extrapolation", self.headline_length)):
            if len(getattr(seed, "errors", {}).get(name, ())):
                out[length] = float(seed.errors[name][0])
        return out


def _nan(value):
    return float("nan") if value is None else value


class MNISTCounting(DigitSequences):
    """How many images of each class (10 outputs)."""

    name = "mnist_counting"
    n_out = 10

    def answer(self, labels):
        # per class, not one-hot: a (1000, 1000) test set would make a 40 MB temporary
        return np.stack([(labels == c).sum(axis=-1) for c in range(10)], -1).astype(np.float32)


class MNISTAddition(DigitSequences):
    """The sum of the digits (1 output)."""

    name = "mnist_addition"
    n_out = 1

    def answer(self, labels):
        return labels.sum(axis=-1, keepdims=True).astype(np.float32)
