"""CNN + core of the digit-sequence tasks: both frameworks against the numpy reference on
shared weights with several replicas, and torch against tf through training steps."""
from __future__ import annotations

import importlib.util
from dataclasses import replace

import numpy as np
import pytest

from models import cnn, digit_net, engine, image_sequence, reference
from models.digit_net import Core
from tasks.mnist_counting import MNISTAddition, MNISTCounting

FRAMEWORKS = [pytest.param(fw, marks=pytest.mark.skipif(
    importlib.util.find_spec(pkg) is None, reason=f"{pkg} is not installed"))
    for fw, pkg in (("torch", "torch"), ("tf", "tensorflow"))]


def trainer_module(fw):
    from models import registry

    return registry.framework_module(fw, "image_sequence")


def _params(side, n_out, cell, hidden, seed=0, replicas=None):
    """One network's parameters, or ``replicas`` different ones stacked."""
    if replicas is not None:
        return cnn.stack([_params(side, n_out, cell, hidden, seed + r) for r in range(replicas)])
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


def test_nau_initialisation_is_nau_s():
    """``init="nau"``: PyTorch's default CNN initialisation (weights and biases
    U(+-1/sqrt(fan_in))) and the NAU cell's U(-0.5, 0.5) ([NAU]'s r = min(0.5, sqrt(3)
    sqrt(2 / (in + out))) for 2 -> 1), the same seed's draws in both frameworks (numpy)."""
    p = cnn.cnn_init(28, 1, np.random.default_rng(0), "torch")
    for key, fan_in in (("conv1", 25), ("conv2", 500), ("fc1", 800), ("fc2", 500)):
        for part in ("W", "b"):
            v = p[f"{key}_{part}"]
            assert np.abs(v).max() <= 1 / np.sqrt(fan_in)
            assert np.abs(v).max() > 0.8 / np.sqrt(fan_in) or v.size < 10  # the full range
    assert p["conv1_b"].std() > 0 and p["fc1_b"].shape == (500,)
    with pytest.raises(ValueError, match="bad CNN initialisation 'he'; valid: glorot, torch"):
        cnn.cnn_init(8, 1, np.random.default_rng(0), "he")
    task = MNISTAddition(source="sklearn", test_sequences=10)
    core = Core("nau", "accumulator", init="nau")
    w = np.concatenate([image_sequence.init(task, core, s)["cell"]["W"] for s in range(300)])
    assert w.shape == (600, 1) and np.abs(w).max() <= 0.5 and np.abs(w).max() > 0.49
    suite = np.concatenate([image_sequence.init(task, replace(core, init="suite"), s)["cell"]["W"]
                            for s in range(300)])
    assert np.abs(suite).max() > 0.6  # the suite's own range, sqrt(3 / 6) = 0.707
    # other cells keep the suite's initialisation (docs/sequential-mnist-protocol.md)
    lstm = image_sequence.init(task, Core("lstm", "accumulator", init="nau"), 0)["cell"]
    own = image_sequence.init(task, Core("lstm", "accumulator"), 0)["cell"]
    for key in own:
        np.testing.assert_array_equal(lstm[key], own[key])


def test_numpy_conv_is_a_convolution():
    """The reference convolution against a direct sum over the kernel."""
    rng = np.random.default_rng(0)
    x, w, b = rng.random((2, 6, 6, 3)), rng.normal(size=(3, 3, 3, 4)), rng.normal(size=4)
    out = cnn._conv(x[None], w[None], b[None], "valid")[0]
    direct = np.zeros((2, 4, 4, 4))
    for i in range(4):
        for j in range(4):
            direct[:, i, j] = np.einsum("nklc,klco->no", x[:, i:i + 3, j:j + 3], w) + b
    np.testing.assert_allclose(out, direct, rtol=1e-12)
    same = cnn._conv(x[None], w[None], b[None], "same")[0]
    np.testing.assert_allclose(same[:, 1:5, 1:5], direct, rtol=1e-12)


def test_numpy_cnn_replicas_are_each_their_own_network():
    """The replica axis of the numpy spec: replica r on its own images is the one-network
    forward pass of its own parameters."""
    p = _params(8, 3, "nac", 3, replicas=3)
    images = np.random.default_rng(5).random((3, 4, 8, 8))
    out = cnn.cnn_forward(p["cnn"], images)
    assert out.shape == (3, 4, 3)
    for r in range(3):
        np.testing.assert_allclose(out[r], cnn.cnn_forward(engine.take(p["cnn"], r), images[r]),
                                   rtol=1e-12)
    assert not np.allclose(out[0], cnn.cnn_forward(p["cnn"], images[[1, 1, 1]])[1])


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("side", [8, 28])
def test_cnn_matches_reference(framework, side):
    """Three replicas' CNNs on shared test images against the numpy spec."""
    p = _params(side, 10, "nac", 10, replicas=3)
    images = np.random.default_rng(2).random((5, side, side)).astype(np.float32)
    trainer = trainer_module(framework).Trainer(p, Core("nac"), images, lr=1e-3)
    expected = cnn.cnn_forward(p["cnn"], np.broadcast_to(images, (3, *images.shape)))
    np.testing.assert_allclose(trainer.features(images), expected, rtol=1e-4, atol=1e-5)


CORES = [Core("lstm"), Core("nau"), Core("gru"),
         Core("nau", "accumulator", initial=0.0), Core("lstm", "accumulator", initial=1.0),
         Core("nmu", "accumulator", accumulate="product", initial=1.0),
         Core("nau", "accumulator", simplification="solved-accumulator"),
         Core("nmu", "accumulator", simplification="solved-accumulator",
              accumulate="product", initial=1.0),
         Core("nau", "accumulator", simplification="pass-through")]


def _core_params(core, n_out, replicas, seed=0):
    task = MNISTCounting(source="sklearn", test_sequences=10) if n_out == 10 else \
        MNISTAddition(source="sklearn", test_sequences=10)
    p = cnn.stack([image_sequence.init(task, core, seed + r) for r in range(replicas)])
    rng = np.random.default_rng(seed)
    for key in ("conv1_b", "conv2_b", "fc1_b", "fc2_b"):  # a bias in the wrong place shows
        p["cnn"][key] = rng.normal(scale=0.1, size=p["cnn"][key].shape)
    return task, p


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("core,n_out", [(c, 1) for c in CORES] + [(Core("nac"), 10),
                                                                  (Core("lstm"), 10)],
                         ids=lambda v: v if isinstance(v, int) else
                         f"{v.kind}-{v.cell}-{v.simplification}-{v.initial}")
def test_network_matches_reference(framework, core, n_out):
    """The framework's whole network, 3 replicas each on its own sequences, = the numpy CNN
    + `digit_net.run` at every step; and the last step is what evaluation computes
    (`image_sequence.core_predict`, all replicas at once, in chunks)."""
    task, p = _core_params(core, n_out, 3)
    rng = np.random.default_rng(3)
    images = rng.random((20, 8, 8)).astype(np.float32)
    idx = rng.integers(0, 20, size=(3, 4, 7))  # (R, B, T), each replica its own
    trainer = trainer_module(framework).Trainer(p, core, images, lr=1e-3)
    feats = cnn.cnn_forward(p["cnn"], images[idx].reshape(3, -1, 8, 8)).reshape(3, 4, 7, -1)
    expected = digit_net.run(core, p, feats)
    assert expected.shape == (3, 4, 7, n_out)
    np.testing.assert_allclose(trainer.predict(images[idx]), expected, rtol=1e-4, atol=1e-5)
    shared = cnn.cnn_forward(p["cnn"], np.broadcast_to(images, (3, 20, 8, 8)))
    last = digit_net.run(core, p, shared[:, idx[0]])[..., -1, :]
    np.testing.assert_allclose(image_sequence.core_predict(core, p, shared, idx[0], chunk=3),
                               last, rtol=1e-12)
    np.testing.assert_allclose(image_sequence.core_predict(core, engine.take(p, 1), shared[1],
                                                           idx[0]), last[1], rtol=1e-12)
    # answers after every image ([NAU]'s sequential MNIST): every step, in chunks too
    every = replace(core, every=True)
    steps = image_sequence.core_predict(every, p, shared, idx[0], chunk=3)
    assert steps.shape == (3, 4, 7, n_out)
    np.testing.assert_allclose(steps, digit_net.run(core, p, shared[:, idx[0]]), rtol=1e-12)


@pytest.mark.parametrize("core", [Core("lstm"), Core("nau"),
                                  Core("nau", "accumulator", every=True, z_weight=1.0),
                                  Core("lstm", "accumulator", every=True)],
                         ids=lambda c: f"{c.kind}-{c.cell}-{'every' if c.every else 'last'}")
def test_torch_and_tf_train_alike(core):
    """Same numpy init, same batches: torch and tf take the same Adam steps, 2 replicas
    each on its own batches. Compared on the answers, not weight by weight: Adam turns a
    gradient that is zero up to float noise (a dead ReLU, U at h = 0) into a full step of
    either sign, in either framework."""
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    task = MNISTAddition(source="sklearn", test_sequences=10) if core.kind == "accumulator" \
        else MNISTCounting(source="sklearn", test_sequences=10)
    p = cnn.stack([image_sequence.init(task, core, seed) for seed in (4, 5)])
    drawn = [task.train_batch(np.random.default_rng(g), 5, 8) for g in (0, 1)]
    idx = np.stack([d[0] for d in drawn], 1)
    ys = np.stack([d[1] for d in drawn], 1)
    if core.every:  # the running sum after every image
        ys = np.cumsum(task.digits.train_labels[idx], -1)[..., None].astype(np.float32)
    lams = np.full(5, 0.01, dtype=np.float32)
    sequences = task.digits.test_images[np.stack([task.eval_sets[10][0]] * 2)]
    before, after = [], []
    for fw in ("torch", "tf"):
        trainer = trainer_module(fw).Trainer(p, core, task.digits.train_images, lr=1e-2)
        before.append(trainer.predict(sequences))
        trainer.train(idx, ys, lams)
        after.append(trainer.predict(sequences))
    np.testing.assert_allclose(before[0], before[1], atol=1e-4)
    assert np.abs(after[0] - before[0]).max() > 0.1  # the steps did something
    np.testing.assert_allclose(after[0], after[1], atol=1e-2)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("unit", ["nau", "nmu", "nac"])
def test_z_regulariser_matches_reference(framework, unit):
    """[NAU]'s R_z per replica: the unit's inputs [x_t, h_{t-1}] averaged over the batch and
    every step, against the numpy spec (`digit_net.z_penalty`) on the same forward pass;
    NAC+ on its weight tanh(W_hat) sigmoid(M_hat), as [NAU]'s nac.py."""
    core = Core(unit, "accumulator", z_weight=1.0, initial=1.0 if unit == "nmu" else 0.0)
    task, p = _core_params(core, 1, 2)
    rng = np.random.default_rng(0)
    for key in p["cell"]:
        p["cell"][key] = rng.uniform(0 if unit == "nmu" else -1, 1, p["cell"][key].shape)
    w = reference.nac_weight(p["cell"]) if unit == "nac" else p["cell"]["W"]
    rng = np.random.default_rng(1)
    images = rng.random((2, 3, 6, 8, 8)).astype(np.float32)
    trainer = trainer_module(framework).Trainer(p, core, images[0, 0], lr=1e-3)
    feats = cnn.cnn_forward(p["cnn"], images.reshape(2, -1, 8, 8)).reshape(2, 3, 6, 1)
    h = digit_net.run(core, p, feats)
    prev = np.concatenate([np.full_like(h[..., :1, :], core.initial), h[..., :-1, :]], -2)
    x_mean = np.concatenate([feats, prev], -1).mean(axis=(1, 2))  # (R, 2)
    expected = digit_net.z_penalty(unit, w, x_mean)
    assert expected.shape == (2,) and expected.min() > 0
    _, z = trainer.net(trainer.tensor(images) if framework == "torch" else images, every=True)
    z = z.detach().numpy() if framework == "torch" else z.numpy()
    np.testing.assert_allclose(z, expected, rtol=1e-4)
    off = trainer_module(framework).Trainer(p, Core(unit, "accumulator"), images[0, 0], lr=1e-3)
    assert off.net(off.tensor(images) if framework == "torch" else images)[1] is None


def test_core_options_are_checked():
    with pytest.raises(ValueError, match="bad core 'gated'; valid: readout, accumulator"):
        Core("nau", "gated")
    with pytest.raises(ValueError, match="needs core='accumulator'"):
        Core("nau", simplification="pass-through")
    with pytest.raises(ValueError, match="bad simplification 'solved'"):
        Core("nau", "accumulator", simplification="solved")
    with pytest.raises(ValueError, match="bad regulariser_z -1.0"):
        Core("nau", "accumulator", z_weight=-1.0)
    with pytest.raises(ValueError, match="bad init 'glorot'; valid: suite, nau"):
        Core("nau", init="glorot")
    task = MNISTAddition(source="sklearn")
    task.answers = "all"
    with pytest.raises(ValueError, match="bad answers 'all'; valid: last, every"):
        Core.of(task, "nau")
    task.answers, task.core, task.regulariser_z = "every", "accumulator", 1.0
    core = Core.of(task, "nau")
    assert core.every and core.kind == "accumulator" and core.z and core.initial == 0.0
    assert core.init == "suite" and core.accumulate == "sum"
    assert Core.of(MNISTAddition(source="sklearn"), "lstm") == Core("lstm")  # the defaults


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
    # [NAU]'s accumulator: every cell reads [x_t, h_{t-1}] with hidden n_out, no readout;
    # its simplifications have no cell; the CNN is the same seed's either way
    lstm1 = image_sequence.init(task, Core("lstm", "accumulator"), 3)
    assert lstm1["cell"]["U"].shape == (1, 4) and lstm1["readout"] == {}
    np.testing.assert_array_equal(lstm1["cnn"]["fc1_W"], a["cnn"]["fc1_W"])
    solved = image_sequence.init(task, Core("nau", "accumulator",
                                            simplification="solved-accumulator"), 3)
    assert solved["cell"] == {} and solved["readout"] == {}
