"""[NAU]'s sequential MNIST against its protocol (docs/sequential-mnist-protocol.md), on
scikit-learn's digits (no MNIST on the test machines) and fake MNIST-sized label arrays."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

import tasks
from benchmarks import schema, suite
from models import registry
from tasks import digits
from tasks.base import TaskError
from tasks.mnist_counting import NAU_LENGTHS
from tasks.sequential_mnist import (
    DATA_PARAMS,
    MIN_SEQUENCES,
    OPERATIONS,
    SequentialMNIST,
    thresholds,
)


@pytest.fixture(autouse=True)
def sklearn_only(monkeypatch):
    monkeypatch.delenv("ARITHBENCH_MNIST", raising=False)


def small(**kw):
    return SequentialMNIST(**{"source": "sklearn", **kw})


def test_registered_and_each_operation_sets_its_protocol():
    assert tasks.get("sequential_mnist") is SequentialMNIST
    s, p = small(), small(operation="prod")
    assert (s.params["train_length"], s.test_lengths, s.params["mnist_digits"]) == \
        (10, NAU_LENGTHS, "0123456789")
    assert (p.params["train_length"], p.test_lengths, p.params["mnist_digits"]) == \
        (2, tuple(range(1, 21)), "123456789")
    assert (s.initial_state, p.initial_state) == (0.0, 1.0)
    assert s.headline_length == 1000 and p.headline_length == 20
    assert s.answers == "every" and s.core == "accumulator" and s.n_out == 1
    assert s.simplification is None and s.regulariser_z == 0.0
    t = small(simplification="solved-accumulator", regulariser_z=1)
    assert t.simplification == "solved-accumulator" and t.regulariser_z == 1.0
    for op in OPERATIONS.values():
        assert set(op.models) | {op.reference_model} <= set(registry.CELL_NAMES)
    assert small(mnist_digits=987654321).params["mnist_digits"] == "123456789"  # CLI int


def test_regularisers_are_nau_s_ramp_scaled_to_the_budget():
    """[NAU]'s sparsity weight: 10 * clip((step - 10,000) / 90,000, 0, 1) at the paper
    budget's length, the same shape over a shorter run; only on regularised units."""
    from models import engine

    task = small()
    paper = task.budget("paper")["steps"]
    steps = np.array([1, 10_000, 55_000, 100_000, 120_000])
    lams = task.regulariser_weights(["nau", "nmu", "nac", None],  # None: the LSTM
                                    engine.TrainConfig(steps=paper), steps)
    np.testing.assert_allclose(lams[:, 0], [0.0, 0.0, 5.0, 10.0, 10.0], rtol=1e-6)
    np.testing.assert_array_equal(lams[:, 1], lams[:, 0])
    assert not lams[:, 2:].any() and lams.dtype == np.float32
    short = task.regulariser_weights(["nau"], engine.TrainConfig(steps=paper // 10),
                                     steps // 10)
    np.testing.assert_allclose(short[:, 0], lams[:, 0], atol=1e-2)  # paper // 10 rounds
    assert (small().accumulate, small(operation="prod").accumulate) == ("sum", "product")
    assert not hasattr(task, "oob")  # [NAU]'s clip makes its R_oob zero; no weight to carry


@pytest.mark.parametrize("params, match", [
    ({"operation": "div"}, "unknown operation 'div'; known: sum, prod"),
    ({"operation": [1, 2]}, "unknown operation \\[1, 2\\]; known: sum, prod"),
    ({"test_lengths": [1, 2]}, "test_lengths 1, 2 leave out train_length=10"),
    ({"simplification": "solved"}, "unknown simplification 'solved'; known: none, "
                                   "solved-accumulator, pass-through"),
    ({"regulariser_z": -1}, "bad regulariser_z -1"),
    ({"regulariser_z": True}, "bad regulariser_z True"),
    ({"mnist_digits": "1123"}, "bad mnist_digits '1123'"),
    ({"mnist_digits": "1a"}, "bad mnist_digits '1a'"),
    ({"train_length": 0}, "bad train_length 0"),
    ({"thresholds": [1.0, 2.0]}, "bad thresholds .* 12 positive numbers"),
    ({"source": "emnist"}, "unknown source 'emnist'"),
    ({"unknown": 1}, "unknown parameter"),
])
def test_bad_parameters_are_named(params, match):
    with pytest.raises(TaskError, match=match):
        small(**params)


@pytest.mark.parametrize("operation", ["sum", "prod"])
def test_training_batches_answer_after_every_image(operation):
    task = small(operation=operation)
    T = task.params["train_length"]
    idx, ys = task.train_batch(np.random.default_rng(0), 3, 16)
    assert idx.shape == (3, 16, T) and ys.shape == (3, 16, T, 1) and ys.dtype == np.float32
    labels = task.digits.train_labels[idx]
    want = np.cumsum(labels, -1) if operation == "sum" else np.cumprod(labels, -1)
    np.testing.assert_array_equal(ys[..., 0], want)
    if operation == "prod":  # digits 1-9 only: a zero would end every product
        assert labels.min() >= 1 and set(np.unique(labels)) == set(range(1, 10))
    else:
        assert set(np.unique(labels)) == set(range(10))
    again = task.train_batch(np.random.default_rng(0), 3, 16)[0]
    np.testing.assert_array_equal(again, idx)


@pytest.mark.parametrize("operation", ["sum", "prod"])
def test_test_sequences_partition_a_permutation_of_the_test_images(operation):
    task = small(operation=operation)
    pool = np.flatnonzero(task.digits.test_labels > (0 if operation == "prod" else -1))
    for L, (idx, y) in task.eval_sets.items():
        n = max(len(pool) // L, MIN_SEQUENCES)
        assert idx.shape == (n, L) and y.shape == (n, L, 1)
        if n * L <= len(pool):  # each test image at most once
            assert len(np.unique(idx)) == idx.size and set(idx.ravel()) <= set(pool)
        labels = task.digits.test_labels[idx]
        first = np.cumsum if operation == "sum" else np.cumprod
        np.testing.assert_array_equal(y[..., 0], first(labels, -1))
    # the same for every seed and every task object
    np.testing.assert_array_equal(small(operation=operation).eval_sets[1][0],
                                  task.eval_sets[1][0])


def test_validation_sequences_come_from_the_validation_images_only():
    task = small()
    idx, y = task.valid_set
    v = task.digits.valid_labels
    assert idx.shape == (len(v) // 10, 10) and idx.max() < len(v)
    np.testing.assert_array_equal(y[..., 0], np.cumsum(v[idx], -1))
    train = {img.tobytes() for img in task.digits.train_images}
    assert not any(img.tobytes() in train for img in task.digits.valid_images)


def test_mnist_split_sizes_and_paper_steps(monkeypatch):
    """[NAU]'s split on MNIST-sized data: 55,000 / 5,000 / 10,000, and 1,000 epochs of
    batch 64 (86 steps per epoch for sum: 5,500 sequences of 10)."""
    rng = np.random.default_rng(0)
    labels = np.tile(np.arange(10), 6_000)
    fake = digits.Digits("mnist", "fake", np.zeros((60_000, 1, 1), np.float32), labels,
                         np.zeros((10_000, 1, 1), np.float32), rng.integers(0, 10, 10_000))
    monkeypatch.setattr(digits, "load", lambda source, mnist_dir=None: fake)
    task = SequentialMNIST(source="mnist")
    d = task.digits
    assert (len(d.train_labels), len(d.valid_labels), len(d.test_labels)) == \
        (55_000, 5_000, 10_000)
    assert task.steps_per_epoch(64) == 86 and task.budget("paper")["steps"] == 1001 * 86
    assert task.budget("paper")["eval_interval"] == 5 * 86
    assert task.eval_sets[1000][0].shape == (10, 1000)  # 10,000 test images // 1000
    prod = SequentialMNIST(source="mnist", operation="prod")
    assert len(prod.train_pool) == 49_500  # the zeros left out
    assert prod.steps_per_epoch(64) == math.ceil(24_750 / 64)
    assert prod.budget("paper")["steps"] == 1001 * 387


def test_threshold_is_the_one_sided_upper_bound_of_the_reference_mean():
    mse = np.array([[1.0, 10.0], [2.0, 12.0], [3.0, 11.0], [2.0, 15.0]])
    got = thresholds(mse)
    n = 4
    for j in range(2):
        col = mse[:, j]
        want = col.mean() + stats.t.ppf(0.99, n - 1) * col.std(ddof=1) / math.sqrt(n)
        assert got[j] == pytest.approx(want, rel=1e-12)
    # [NAU]'s sum: 9 reference runs, t(0.99, 8) = 2.896
    assert stats.t.ppf(0.99, 8) == pytest.approx(2.896, abs=1e-3)
    with pytest.raises(TaskError, match="at least 2 reference runs"):
        thresholds(mse[:1])
    with pytest.raises(TaskError, match="not finite"):
        thresholds([[1.0], [np.nan]])


def fit(task, preds, untrained=None, diverged=False):
    return SimpleNamespace(best=preds, selected_step=400, diverged=diverged,
                           extra={"untrained_mse": untrained or {}})


def test_metrics_per_length_and_success_against_given_thresholds():
    task = small(operation="prod", test_lengths=(1, 2, 5), thresholds=[0.5, 0.5, 0.5])
    preds = {}
    for L, (_, y) in task.eval_sets.items():
        preds[L] = y + (0.0 if L < 5 else 1.0)  # exact at 1 and 2, off by 1 at 5
    m = task.metrics(fit(task, preds, untrained={1: 4.0, 2: 4.0, 5: 2.0}))
    assert (m["mse_1"], m["mse_2"], m["mse_5"]) == (0.0, 0.0, 1.0)
    assert (m["success_1"], m["success_2"], m["success_5"]) == (True, True, False)
    assert m["success"] is False and m["scored"] is True  # the longest length decides
    assert m["normalised_5"] == pytest.approx(50.0) and m["normalised_1"] == 0.0
    assert m["interpolation_mse"] == 0.0 and m["extrapolation_mse"] == 1.0
    assert m["per_length"]["threshold"] == [0.5, 0.5, 0.5]
    assert m["accuracy_5"] == 0.0 and m["accuracy_1"] == 1.0
    assert m["digits_source"] == "sklearn" and m["digits_valid"] > 0
    assert schema.problem(_record(task, m)) is None
    diverged = task.metrics(fit(task, {L: y for L, (_, y) in task.eval_sets.items()},
                                diverged=True))
    assert diverged["success_1"] is False


def test_without_thresholds_a_record_is_not_scored():
    task = small(test_lengths=(1, 10), thresholds="none")
    m = task.metrics(fit(task, {L: y for L, (_, y) in task.eval_sets.items()}))
    assert m["scored"] is False and m["success"] is False and "success_10" not in m
    assert m["threshold_10"] is None and m["mse_10"] == 0.0


def _record(task, metrics, seed=0, unit="nau", params=None):
    spec = suite.RunSpec.make(params or task.params, task=task.name, unit=unit,
                              framework="torch", seed=seed, budget="smoke", steps=200,
                              batch_size=16, lr=1e-2, eval_interval=100, schedule_scale=1.0)
    return {"id": spec.id, **spec.to_dict(), "status": "ok", "reason": "",
            "metrics": metrics, "curve": {"step": [0]}}


def test_thresholds_from_a_results_directory_of_reference_runs(tmp_path):
    task = small(operation="prod", test_lengths=(1, 2))
    [(ref_params, model, seeds)] = task.references()
    assert model == "nmu" and seeds == tuple(range(10))
    assert ref_params["simplification"] == "solved-accumulator"
    ref = SequentialMNIST(**ref_params)
    mses = np.array([[0.1, 0.5], [0.2, 0.7], [0.15, 0.4]])
    for seed, row in enumerate(mses):
        rec = _record(ref, {"mse_1": row[0], "mse_2": row[1]}, seed=seed, unit=model,
                      params=ref.params)
        (tmp_path / f"{rec['id']}.json").write_text(json.dumps(rec))
    # runs that are no reference: another operation, not solved, failed
    sum2 = small(train_length=2, test_lengths=(1, 2))
    other = _record(sum2, {"mse_1": 9.0, "mse_2": 9.0}, seed=7,
                    params={**sum2.params, "simplification": "solved-accumulator"})
    unsolved = _record(task, {"mse_1": 9.0, "mse_2": 9.0}, seed=8)
    failed = {**_record(ref, {}, seed=9, params=ref.params), "status": "error"}
    for rec in (other, unsolved, failed):
        (tmp_path / f"{rec['id']}.json").write_text(json.dumps(rec))
    (tmp_path / "broken.json").write_text("{")
    scored = small(operation="prod", test_lengths=(1, 2), thresholds=str(tmp_path))
    np.testing.assert_allclose(scored.threshold_values, thresholds(mses), rtol=1e-12)
    m = scored.metrics(fit(scored, {L: y for L, (_, y) in scored.eval_sets.items()}))
    assert m["success"] is True and m["reference_runs"] == 3
    with pytest.raises(TaskError, match="1 finished solved-accumulator reference run"):
        small(train_length=2, test_lengths=(1, 2), thresholds=str(tmp_path)).threshold_values  # noqa: B018
    with pytest.raises(TaskError, match="no such results directory"):
        small(thresholds=str(tmp_path / "none")).threshold_values  # noqa: B018


def test_references_are_the_solved_accumulator_runs_of_the_same_data():
    task = small(operation="prod", test_lengths=(1, 2))
    assert task.params["thresholds"] == "references"  # the default
    [(params, model, seeds)] = task.references()
    assert (model, seeds) == ("nmu", tuple(range(10)))
    ref = small(**params)
    assert ref.simplification == "solved-accumulator" and ref.references() == []
    assert all(ref.params.get(k) == task.params.get(k) for k in DATA_PARAMS)
    # a solved-accumulator run asked for directly is that reference run (same id)
    direct = small(operation="prod", test_lengths=(1, 2), simplification="solved-accumulator")
    assert direct.params == ref.params and direct.params["thresholds"] == "none"
    for other in ("none", [0.5, 0.5], "results/ref"):
        assert small(operation="prod", test_lengths=(1, 2), thresholds=other).references() \
            == []


def test_thresholds_from_the_reference_records_handed_over():
    task = small(operation="prod", test_lengths=(1, 2))
    [(params, model, _)] = task.references()
    ref = small(**params)
    mses = np.array([[0.1, 0.5], [0.2, 0.7], [0.15, 0.4]])
    refs = [_record(ref, {"mse_1": a, "mse_2": b}, seed=k, unit=model, params=ref.params)
            for k, (a, b) in enumerate(mses)]
    preds = {L: y for L, (_, y) in task.eval_sets.items()}
    assert task.metrics(fit(task, preds))["scored"] is False  # nothing handed yet
    diverged = {**_record(ref, {"mse_1": None, "mse_2": None}, seed=5, params=ref.params),
                "status": "diverged"}
    assert task.use_references([*refs, diverged]) == ""
    np.testing.assert_allclose(task.threshold_values, thresholds(mses), rtol=1e-12)
    m = task.metrics(fit(task, preds))
    assert m["scored"] is True and m["success"] is True and m["reference_runs"] == 3
    assert [m["threshold_1"], m["threshold_2"]] == list(task.threshold_values)
    # one still to finish: none are used (a rerun would change the bar)
    failed = {**refs[0], "status": "error", "reason": "RuntimeError: boom"}
    missing = {"unit": "nmu", "seed": 9, "status": "missing", "reason": "no record"}
    why = task.use_references([failed, *refs[1:], missing])
    assert why.startswith("not scored: 2 of 4 reference runs did not finish")
    assert "nmu seed 0 error (RuntimeError: boom)" in why and "nmu seed 9 missing" in why
    assert task.threshold_values is None and task.metrics(fit(task, preds))["scored"] is False
    assert "at least 2" in task.use_references([refs[0], diverged])


def test_defaults_follow_the_launch_scripts():
    paper = SequentialMNIST.defaults({}, "paper")
    assert ({"operation": "sum", "regulariser_z": 1.0}, ("nau", "nac")) in paper
    assert ({"operation": "prod", "regulariser_z": 1.0}, ("nmu",)) in paper
    assert SequentialMNIST.defaults({"operation": ["prod"]}, "quick") == \
        [({"operation": "prod", "reference_seeds": 3, "regulariser_z": 1.0}, ("nmu",))]
    quick = small(operation="prod", reference_seeds=3)
    assert quick.references()[0][2] == (0, 1, 2)  # the first 3 of [NAU]'s seeds
    assert small().references()[0][2] == tuple(range(1, 10))
    assert (small().params["reference_seeds"], small(operation="prod").params["reference_seeds"]) \
        == (9, 10)  # "auto": [NAU]'s, a number in the record
    for bad in (1, 11, "3", True):
        with pytest.raises(TaskError, match=f"bad reference_seeds {bad!r}; expected 'auto'"):
            small(operation="prod", reference_seeds=bad)
    assert SequentialMNIST.defaults({}, "smoke") == [
        ({"operation": "sum", "regulariser_z": 1.0}, ("nau",)),
        ({"operation": "sum", "regulariser_z": 0.0}, ("lstm",)),
        ({"operation": "prod", "regulariser_z": 1.0}, ("nmu",))]


def test_suite_expands_each_operation_at_its_own_paper_steps():
    specs = suite.expand(["sequential_mnist"], None, ["torch"], [0], suite.get_budget("paper"),
                         {"source": ["sklearn"]})
    by_op = {s.params["operation"]: s for s in specs}
    assert by_op["sum"].steps == 1001 * small().steps_per_epoch(64)
    assert by_op["prod"].steps == 1001 * small(operation="prod").steps_per_epoch(64)
    assert {s.unit for s in specs if s.params["operation"] == "sum"} == \
        {"nau", "nac", "lstm", "nalu"}
