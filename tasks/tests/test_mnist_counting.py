"""MNIST counting and addition against their protocol, on the
scikit-learn digits (no MNIST on the test machines)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import tasks
from models import registry
from tasks.base import TaskError
from tasks.mnist_counting import NAU_LENGTHS, MNISTAddition, MNISTCounting


@pytest.fixture(autouse=True)
def sklearn_only(monkeypatch):
    monkeypatch.delenv("ARITHBENCH_MNIST", raising=False)


def small(cls, **kw):
    return cls(source="sklearn", test_sequences=50, **kw)


def test_registered_with_defaults():
    assert tasks.get("mnist_counting") is MNISTCounting
    assert tasks.get("mnist_addition") is MNISTAddition
    task = MNISTCounting()
    assert task.params["train_length"] == 10 and task.test_lengths == (100, 1000)
    assert task.eval_lengths == (10, 100, 1000)
    assert MNISTCounting(test_lengths="nau").test_lengths == NAU_LENGTHS
    assert NAU_LENGTHS == (1, 10, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000)
    assert MNISTCounting(test_lengths=50).test_lengths == (50,)
    assert MNISTCounting().headline_length == 100
    assert MNISTCounting(test_lengths="nau").headline_length == 100  # not 1
    assert MNISTCounting(test_lengths=(1, 5)).headline_length == 5
    assert set(MNISTCounting.default_models) <= set(registry.CELL_NAMES)


def test_training_batches_follow_the_protocol():
    for cls in (MNISTCounting, MNISTAddition):
        task = small(cls)
        idx, y = task.train_batch(np.random.default_rng(0), 3, 16)
        assert idx.shape == (3, 16, 10) and y.shape == (3, 16, task.n_out)
        assert idx.min() >= 0 and idx.max() < len(task.digits.train_labels)
        labels = task.digits.train_labels[idx]
        if cls is MNISTCounting:
            assert np.all(y.sum(-1) == 10)  # the counts sum to the length
            for c in range(10):
                np.testing.assert_array_equal(y[..., c], (labels == c).sum(-1))
        else:
            np.testing.assert_array_equal(y[..., 0], labels.sum(-1))
        # the same stream gives the same data; another gives other data
        again = task.train_batch(np.random.default_rng(0), 3, 16)[0]
        np.testing.assert_array_equal(again, idx)
        assert not np.array_equal(task.train_batch(np.random.default_rng(1), 3, 16)[0], idx)


def test_eval_sets_lengths_labels_and_test_images_only():
    task = small(MNISTCounting, test_lengths=(1, 100))
    d = task.digits
    assert list(task.eval_sets) == [10, 1, 100]
    for length, (idx, y) in task.eval_sets.items():
        assert idx.shape == (50, length) and y.shape == (50, 10)
        assert np.all(y.sum(-1) == length)
        # indices into the test images: sequences are built from test images only
        assert idx.max() < len(d.test_labels)
        np.testing.assert_array_equal(y, task.answer(d.test_labels[idx]))
    # the test images themselves never appear among the training images
    train = {img.tobytes() for img in d.train_images}
    assert not any(d.test_images[i].tobytes() in train for i in np.unique(task.eval_sets[100][0]))
    # fixed: the same for every seed and every instance
    np.testing.assert_array_equal(small(MNISTCounting, test_lengths=(1, 100)).eval_sets[100][0],
                                  task.eval_sets[100][0])
    addition = small(MNISTAddition)
    idx, y = addition.eval_sets[1000]
    np.testing.assert_array_equal(y[:, 0], addition.digits.test_labels[idx].sum(-1))
    assert 4000 < y.mean() < 5000  # the mean digit is about 4.5


def _seed(predictions, selected_step, diverged, errors=None, extra=None):
    """What the loop hands a task's metrics (models.engine.SeedFit), as far as they read it."""
    return SimpleNamespace(best=predictions, selected_step=selected_step, diverged=diverged,
                           errors=errors or {}, extra=extra or {})


def test_metrics_accuracy_mae_success():
    task = small(MNISTCounting, test_lengths=(100,))
    truth = {L: y.copy() for L, (_, y) in task.eval_sets.items()}
    perfect = task.metrics(_seed({L: y + 0.3 for L, y in truth.items()}, 40, False))
    assert perfect["accuracy_100"] == 1.0 and perfect["success"]
    assert perfect["mae_100"] == pytest.approx(0.3) and perfect["mse_10"] == pytest.approx(0.09)
    assert perfect["interpolation_mse"] == pytest.approx(0.09)
    assert perfect["relative_error_100"] == pytest.approx(0.03)
    assert perfect["selected_step"] == 40 and perfect["digits_source"] == "sklearn"
    assert perfect["digits_train"] == 1257 and perfect["digits_test"] == 540
    assert perfect["per_length"]["length"] == [10, 100]
    # one count off in every sequence: no sequence is all right, MAE 1/10 per output
    off = {L: y.copy() for L, y in truth.items()}
    for y in off.values():
        y[:, 3] += 1
    m = task.metrics(_seed(off, 0, False))
    assert m["accuracy_100"] == 0.0 and m["mae_100"] == pytest.approx(0.1)
    assert m["success"]  # relative error 1% at length 100
    lost = task.metrics(_seed({L: np.zeros_like(y) for L, y in truth.items()}, 0, False))
    assert lost["relative_error_100"] == pytest.approx(1.0) and not lost["success"]
    assert not task.metrics(_seed(truth, 0, True))["success"]  # diverged is a failure
    nan = task.metrics(_seed({L: np.full_like(y, np.nan) for L, y in truth.items()}, 0, True))
    assert nan["mse_100"] is None and np.isnan(nan["extrapolation_mse"])
    # the constant-predictor baseline is the variance of the targets
    y = truth[100]
    assert m["baseline_mse_100"] == pytest.approx(np.mean((y - y.mean(0)) ** 2))


@pytest.mark.parametrize("params,match", [
    ({"train_length": 0}, "bad train_length 0"),
    ({"test_lengths": "paper"}, "bad test_lengths 'paper'"),
    ({"test_lengths": (100, -1)}, "bad test_lengths"),
    ({"source": "emnist"}, "unknown source 'emnist'; known: auto, mnist, sklearn"),
    ({"success_error": 0}, "bad success_error 0"),
    ({"hidden_size": 2.5}, "bad hidden_size 2.5"),
])
def test_bad_parameters(params, match):
    with pytest.raises(TaskError, match=match):
        MNISTCounting(**params)


def test_models_are_cells():
    task = MNISTAddition()
    for cell in ("lstm", "gru", "rnn_relu", "nac", "nalu", "nau"):
        task.check_model(cell)
    for bad in ("relu6", "nau-nmu", "transformer"):
        with pytest.raises(registry.UnknownName, match=f"model '{bad}' cannot be .*known: "
                           "lstm"):
            task.check_model(bad)
    assert task.hidden("lstm") == 32 and task.hidden("nac") == 1
    assert MNISTCounting().hidden("nau") == 10


def test_normalised_error_scales_by_the_untrained_network():
    """100 * MSE / the untrained network's MSE at each length: step 0's evaluation for the
    training and headline lengths, the loop's extra pass for the others."""
    task = small(MNISTAddition, test_lengths=(100, 1000))
    truth = {L: y.copy() for L, (_, y) in task.eval_sets.items()}
    untrained = {10: 400.0, 100: 2e5, 1000: 2e7}
    seed = lambda pred: _seed(pred, 0, False,  # noqa: E731
                              errors={"interpolation": np.array([400.0, 1.0]),
                                      "extrapolation": np.array([2e5, 3.0])},
                              extra={"untrained_mse": {1000: 2e7}})
    exact = task.metrics(seed(truth))
    assert exact["interpolation_normalised"] == 0 and exact["extrapolation_normalised"] == 0
    assert exact["per_length"]["normalised"] == [0.0, 0.0, 0.0]
    off = task.metrics(seed({L: y + 2.0 for L, y in truth.items()}))  # MSE 4 at every length
    for L, mse in untrained.items():
        assert off[f"normalised_{L}"] == pytest.approx(100 * 4 / mse)
    assert off["interpolation_normalised"] == pytest.approx(1.0)
    assert off["extrapolation_normalised"] == pytest.approx(100 * 4 / 2e5)
    # without the untrained errors there is nothing to scale by
    bare = task.metrics(_seed(truth, 0, False))
    assert np.isnan(bare["extrapolation_normalised"]) and bare["normalised_1000"] is None


@pytest.mark.parametrize("framework", [f for f in registry.FRAMEWORKS
                                       if registry.framework_missing(f) is None][:1])
def test_untrained_network_scores_100_at_every_length(framework):
    """Trained with lr 0 the selected network is the untrained one: its normalised error is
    100 at the training length, the headline length and the length step 0 did not see."""
    from benchmarks import runner, suite

    tiny = suite.Budget("tiny", steps=2, eval_interval=1, seeds=1, description="tests",
                        batch_size=2, lr=0.0)
    specs = suite.expand(["mnist_addition"], ["nau"], [framework], [0], tiny,
                         {"source": ["sklearn"], "test_sequences": [20],
                          "test_lengths": [(30, 60)]})
    record, = runner.run_group(specs)
    assert record["status"] == "ok", record.get("traceback")
    m = record["metrics"]
    for L in (10, 30, 60):
        assert m[f"normalised_{L}"] == pytest.approx(100.0), L
    assert m["interpolation_normalised"] == pytest.approx(100.0)
    assert m["extrapolation_normalised"] == pytest.approx(100.0)
