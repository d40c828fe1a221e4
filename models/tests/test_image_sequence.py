"""CNN + recurrent core of the digit-sequence tasks: both frameworks against the numpy
reference on shared weights, and torch against tf through training steps."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from models import cnn, engine, image_sequence, reference
from tasks.mnist_counting import MNISTAddition, MNISTCounting

FRAMEWORKS = [pytest.param(fw, marks=pytest.mark.skipif(
    importlib.util.find_spec(pkg) is None, reason=f"{pkg} is not installed"))
    for fw, pkg in (("torch", "torch"), ("tf", "tensorflow"))]


def trainer_module(fw):
    from models import registry

    return registry.framework_module(fw, "image_sequence")


def _params(side, n_out, cell, hidden, seed=0):
    rng = np.random.default_rng(seed)
    out = {"cnn": cnn.cnn_init(side, n_out, rng),
           "cell": reference.cell_init(cell, n_out, hidden, rng), "readout": {}}
    # non-zero biases, so that a bias in the wrong place shows
    for key in ("conv1_b", "conv2_b", "fc1_b", "fc2_b"):
        out["cnn"][key] = rng.normal(scale=0.1, size=out["cnn"][key].shape)
    if not reference.CELLS[cell].unit:
        out["readout"] = reference.init("linear", hidden, n_out, rng)
    return out


def test_cnn_shapes_follow_the_architectures():
    assert cnn._flat_size(28) == 800  # [NAU]: dense 800 -> 500
    assert cnn._flat_size(8) == 64
    p = cnn.cnn_init(28, 1, np.random.default_rng(0))
    assert p["conv1_W"].shape == (5, 5, 1, 20) and p["conv2_W"].shape == (5, 5, 20, 50)
    assert p["fc1_W"].shape == (800, 500) and p["fc2_W"].shape == (500, 1)
    images = np.random.default_rng(1).random((3, 28, 28))
    assert cnn.cnn_forward(p, images).shape == (3, 1)
    with pytest.raises(ValueError, match="no CNN for 10x10 images; known sides: \\[8, 28\\]"):
        cnn.arch(10)


def test_numpy_conv_is_a_convolution():
    """The reference convolution against a direct sum over the kernel."""
    rng = np.random.default_rng(0)
    x, w, b = rng.random((2, 6, 6, 3)), rng.normal(size=(3, 3, 3, 4)), rng.normal(size=4)
    out = cnn._conv(x, w, b, "valid")
    direct = np.zeros((2, 4, 4, 4))
    for i in range(4):
        for j in range(4):
            direct[:, i, j] = np.einsum("nklc,klco->no", x[:, i:i + 3, j:j + 3], w) + b
    np.testing.assert_allclose(out, direct, rtol=1e-12)
    same = cnn._conv(x, w, b, "same")
    np.testing.assert_allclose(same[:, 1:5, 1:5], direct, rtol=1e-12)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("side", [8, 28])
def test_cnn_matches_reference(framework, side):
    p = _params(side, 10, "nac", 10)
    images = np.random.default_rng(2).random((5, side, side)).astype(np.float32)
    trainer = trainer_module(framework).Trainer(p, "nac", images, lr=1e-3)
    np.testing.assert_allclose(trainer.features(images),
                               cnn.cnn_forward(p["cnn"], images), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("cell,n_out", [("lstm", 10), ("nau", 10), ("nac", 1), ("gru", 1)])
def test_network_matches_reference(framework, cell, n_out):
    """The framework's whole network = numpy CNN + reference cell steps + readout, which is
    how evaluation computes the answers."""
    hidden = 6 if not reference.CELLS[cell].unit else n_out
    p = _params(8, n_out, cell, hidden)
    rng = np.random.default_rng(3)
    images = rng.random((20, 8, 8)).astype(np.float32)
    idx = rng.integers(0, 20, size=(4, 7))
    trainer = trainer_module(framework).Trainer(p, cell, images, lr=1e-3)
    feats = cnn.cnn_forward(p["cnn"], images)
    expected = image_sequence.core_predict(cell, p, feats, idx, chunk=3)
    np.testing.assert_allclose(trainer.predict(images[idx]), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(image_sequence.core_predict(cell, p, feats, idx), expected)


@pytest.mark.parametrize("cell", ["lstm", "nau"])
def test_torch_and_tf_train_alike(cell):
    """Same numpy init, same batches: torch and tf take the same Adam steps. Compared on the
    answers, not weight by weight: Adam turns a gradient that is zero up to float noise (a
    dead ReLU, U at h = 0) into a full step of either sign, in either framework."""
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    task = MNISTCounting(source="sklearn", test_sequences=10)
    p = image_sequence.init(task, cell, seed=4)
    idx, ys = task.train_batch(np.random.default_rng(0), 5, 8)
    lams = np.full(5, 0.01, dtype=np.float32)
    sequences = task.digits.test_images[task.eval_sets[10][0]]
    before, after = [], []
    for fw in ("torch", "tf"):
        trainer = trainer_module(fw).Trainer(p, cell, task.digits.train_images, lr=1e-2)
        before.append(trainer.predict(sequences))
        trainer.train(idx, ys, lams)
        after.append(trainer.predict(sequences))
    np.testing.assert_allclose(before[0], before[1], atol=1e-4)
    assert np.abs(after[0] - before[0]).max() > 0.1  # the steps did something
    np.testing.assert_allclose(after[0], after[1], atol=1e-2)


def test_regulariser_schedule_and_init():
    def weights(cell, steps, scale):
        cfg = engine.TrainConfig(steps=1, schedule_scale=scale)
        return engine.regulariser_weights([reference.CELLS[cell].unit], cfg, steps)[:, 0]

    lam = weights("nau", np.arange(1, 5001), 1.0)
    assert lam[0] == 0 and lam[-1] == 0 and lam.dtype == np.float32  # starts at 5,000 steps
    lam = weights("nau", np.array([1, 10, 100]), 0.001)
    np.testing.assert_allclose(lam, [0.0, 0.01 * 5 / 45, 0.01])
    assert not weights("lstm", np.arange(1, 10), 1.0).any()
    task = MNISTAddition(source="sklearn")
    a, b = image_sequence.init(task, "nau", 3), image_sequence.init(task, "nau", 3)
    np.testing.assert_array_equal(a["cell"]["W"], b["cell"]["W"])
    assert a["cell"]["W"].shape == (2, 1) and a["readout"] == {}
    lstm = image_sequence.init(task, "lstm", 3)
    assert lstm["cell"]["U"].shape == (32, 128) and lstm["readout"]["W"].shape == (32, 1)
    assert not np.array_equal(image_sequence.init(task, "nau", 4)["cnn"]["fc1_W"],
                              a["cnn"]["fc1_W"])
