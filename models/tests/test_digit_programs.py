"""The digit tasks' seeds as one program (`models.image_sequence.run_group`): a seed's record
from a program of three is its record from a program of its own, within the tolerance of
vectorised training (`test_vectorised.py`: float32 rounding differs with the number of
replicas), in torch and tf, for the suite's core and [NAU]'s accumulator."""
from functools import cached_property

import numpy as np
import pytest

from benchmarks import runner, suite
from models import cnn, image_sequence, registry
from models.digit_net import Core
from tasks.mnist_counting import MNISTAddition
from tasks.sequential_mnist import SequentialMNIST

FRAMEWORKS = [pytest.param(fw, marks=pytest.mark.skipif(
    registry.framework_missing(fw) is not None, reason=f"{fw} not installed"))
    for fw in registry.FRAMEWORKS]
TINY = suite.Budget("tiny", steps=60, eval_interval=20, seeds=3, description="tests",
                    batch_size=8, lr=1e-2)
PARAMS = {"source": ["sklearn"], "test_sequences": [20], "test_lengths": [(20, 30)]}


class RunningSum(MNISTAddition):
    """mnist_addition answered after every image (``answers="every"``, as sequential MNIST):
    the running sum, (steps, B, T, 1) per training batch and (N, L, 1) per test length."""

    def train_batch(self, rng, steps, batch):
        idx, _ = super().train_batch(rng, steps, batch)
        return idx, np.cumsum(self.digits.train_labels[idx], -1)[..., None].astype(np.float32)

    @cached_property
    def eval_sets(self):
        return {L: (idx, np.cumsum(self.digits.test_labels[idx], -1)[..., None].astype(float))
                for L, (idx, _) in super().eval_sets.items()}


NAU = {"answers": "every", "core": "accumulator", "initial_state": 0.0, "regulariser_z": 1.0}


def _records(task_name, framework, model, seeds, options=None):
    specs = suite.expand([task_name], [model], [framework], seeds, TINY, PARAMS)
    if options is None:
        return {r["seed"]: r for r in runner.run_group(specs)}
    task = RunningSum(**specs[0].params)
    for key, value in options.items():  # what the task side's protocol sets
        setattr(task, key, value)
    results, _ = image_sequence.run_group(task, specs)
    return {spec.seed: r for spec, r in zip(specs, results)}


def _curve(record):
    return np.array([record["curve"]["interpolation"], record["curve"]["extrapolation"]],
                    dtype=float)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("task_name,model,options", [
    ("mnist_counting", "nau", None), ("mnist_addition", "lstm", None),
    ("mnist_addition", "nau", NAU), ("mnist_addition", "lstm", NAU)],
    ids=["counting-nau", "addition-lstm", "nau-accumulator", "lstm-accumulator"])
def test_a_seed_in_a_program_is_the_seed_alone(framework, task_name, model, options):
    group = _records(task_name, framework, model, [0, 1, 2], options)
    alone = _records(task_name, framework, model, [1], options)
    mine, solo = group[1], alone[1]
    assert mine["status"] == solo["status"] == "ok", mine["reason"]
    np.testing.assert_allclose(_curve(mine), _curve(solo), rtol=1e-4, atol=1e-6)
    for key in ("selected_step", "success"):
        assert mine["metrics"][key] == solo["metrics"][key], key
    for key in ("mse_20", "normalised_20", "mae_10", "normalised_30"):
        np.testing.assert_allclose(mine["metrics"][key], solo["metrics"][key], rtol=1e-4)
    # and the replicas really are different runs that trained
    assert not np.allclose(_curve(group[0]), _curve(mine))
    assert _curve(mine)[0, -1] < _curve(mine)[0, 0]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_normalised_errors_are_against_the_untrained_network(framework):
    """At a length evaluated only at the end (30), the normalised error's scale is the MSE
    of the seed's network at step 0, computed here in numpy from its initialisation; the
    kept (selected) network must not overwrite it."""
    records = _records("mnist_addition", framework, "nau", [0, 1])
    task = MNISTAddition(**suite.expand(["mnist_addition"], ["nau"], [framework], [0], TINY,
                                        PARAMS)[0].params)
    idx, y = task.eval_sets[30]
    for seed, record in records.items():
        p = image_sequence.init(task, "nau", seed)
        features = cnn.cnn_forward(p["cnn"], task.digits.test_images)
        untrained = np.mean((image_sequence.core_predict(Core("nau"), p, features, idx) - y) ** 2)
        m = record["metrics"]
        assert m["normalised_30"] < 100
        np.testing.assert_allclose(100 * m["mse_30"] / m["normalised_30"], untrained, rtol=1e-4)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_sequential_mnist_selects_on_validation_in_a_program(framework):
    """[NAU]'s sequential MNIST through the suite: a seed in a program of three is the seed
    alone (every curve, the validation one first); each seed is selected at its lowest
    validation MSE; the normalised errors' scale is the untrained network's MSE over every
    step ([NAU]'s initialisation, computed here in numpy) at every length."""
    params = {"source": ["sklearn"], "test_lengths": [(1, 10, 30)], "thresholds": ["none"]}

    def records(seeds):
        specs = suite.expand(["sequential_mnist"], ["nau"], [framework], seeds, TINY, params)
        return {r["seed"]: r for r in runner.run_group(specs)}

    specs = suite.expand(["sequential_mnist"], ["nau"], [framework], [0], TINY, params)
    task = SequentialMNIST(**specs[0].params)
    group, alone = records([0, 1, 2]), records([1])
    mine, solo = group[1], alone[1]
    assert mine["status"] == solo["status"] == "ok", mine["reason"]
    assert list(mine["curve"]) == ["step", "validation", "interpolation", "extrapolation"]
    for key in ("validation", "interpolation", "extrapolation"):
        np.testing.assert_allclose(mine["curve"][key], solo["curve"][key], rtol=1e-4)
    for record in group.values():
        curve, m = record["curve"], record["metrics"]
        assert m["selected_step"] == curve["step"][int(np.nanargmin(curve["validation"]))]
        p = image_sequence.init(task, Core.of(task, "nau"), record["seed"])
        features = cnn.cnn_forward(p["cnn"], task.digits.test_images)
        for L in (1, 10, 30):  # 1: evaluated at the end only; 10, 30: at every evaluation
            idx, y = task.eval_sets[L]
            every = image_sequence.core_predict(Core.of(task, "nau"), p, features, idx)
            assert every.shape == y.shape  # answers after every image
            np.testing.assert_allclose(100 * m[f"mse_{L}"] / m[f"normalised_{L}"],
                                       np.mean((every - y) ** 2), rtol=1e-4)
        # the selected network's test MSE at the training length is the curve's there
        at = curve["step"].index(m["selected_step"])
        np.testing.assert_allclose(m["mse_10"], curve["interpolation"][at], rtol=1e-9)
    np.testing.assert_allclose(mine["metrics"]["mse_30"], solo["metrics"]["mse_30"], rtol=1e-4)


def test_every_step_answers_need_every_step_test_answers():
    """A task answered after every image must give (N, L, n_out) test answers; the last
    answer only (N, n_out) is refused before training, naming the shapes."""
    specs = suite.expand(["mnist_addition"], ["nau"], ["torch"], [0], TINY, PARAMS)
    task = MNISTAddition(**specs[0].params)
    task.answers, task.core = "every", "accumulator"
    with pytest.raises(ValueError, match=r"answers=every needs test answers shaped \(20, 10, 1\) "
                                         r"at length 10, not \(20, 1\)"):
        image_sequence.run_group(task, specs)
