"""Text to number network: both frameworks against the numpy specification on shared
weights, torch against tf when training, and R seeds at once against one-seed runs."""
import numpy as np
import pytest

from benchmarks import runner, suite
from models import registry, text
from tasks.text_to_number import TextToNumber

FRAMEWORKS = [pytest.param(fw, marks=pytest.mark.skipif(
    registry.framework_missing(fw) is not None, reason=f"{fw} not installed"))
    for fw in registry.FRAMEWORKS]
UNITS = ["linear", "nac", "nalu", "nau", "relu6"]
TINY = suite.Budget("tiny", steps=40, eval_interval=20, seeds=3, description="tests",
                    batch_size=16, lr=1e-2)


def _trainer(framework, task, unit, seeds):
    return registry.framework_module(framework, "text").Trainer(
        text.init_params(task, unit, seeds), unit, lr=1e-2)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("unit", UNITS)
def test_forward_matches_reference(framework, unit):
    task = TextToNumber(language="de", hidden_size=8, embedding_size=4)
    tokens, lengths = task.encoded()
    params = text.init_params(task, unit, [0, 1])
    want = text.forward(params, unit, tokens, lengths)
    got = _trainer(framework, task, unit, [0, 1]).predict(tokens, lengths)
    assert got.shape == (2, 999, tokens.shape[1])
    # NALU's log|h| amplifies float32 rounding near h = 0
    np.testing.assert_allclose(got, want, rtol=1e-3 if unit == "nalu" else 1e-5, atol=1e-5)


def test_state_is_held_past_the_end():
    task = TextToNumber(hidden_size=8, embedding_size=4)
    tokens, lengths = task.encoded()
    out = text.forward(text.init_params(task, "linear", [3]), "linear", tokens, lengths)
    one = lengths == 1
    assert np.allclose(out[0, one, 1:], out[0, one, :1])
    # a number's reading of its first word is the reading of that word alone
    np.testing.assert_allclose(out[0, 719, 0], out[0, 6, 0])  # "seven ..." vs "seven"


def test_loss_weights():
    task = TextToNumber()
    tokens, lengths = task.encoded()
    y, w = text.loss_weights(task, np.array([12, 728]), lengths)
    assert w[0].tolist() == [1, 0, 0, 0, 0] and w[1].tolist() == [0, 0, 0, 0, 1]
    assert y[1, -1] == pytest.approx(7.28)  # value / scale
    y, w = text.loss_weights(TextToNumber(prefix_loss=True), np.array([12, 728]), lengths)
    np.testing.assert_allclose(w[1], 0.2) and np.testing.assert_allclose(w.sum(1), 1)
    np.testing.assert_allclose(y[1], [0.07, 7, 7, 7.2, 7.28], rtol=1e-6)


@pytest.mark.skipif(any(registry.framework_missing(f) for f in registry.FRAMEWORKS),
                    reason="needs both frameworks")
@pytest.mark.parametrize("unit", ["linear", "nau"])
def test_torch_and_tf_train_alike(unit):
    task = TextToNumber(prefix_loss=True, hidden_size=8, embedding_size=4)
    tokens, lengths = task.encoded()
    train = task.split()["train"]
    y, w = text.loss_weights(task, train, lengths)
    picks = np.random.default_rng(0).integers(0, len(train), size=(5, 2, 16))
    lams = np.full((5, 1), 0.1, dtype=np.float32)
    got, read = {}, {}
    for fw in registry.FRAMEWORKS:
        tr = _trainer(fw, task, unit, [0, 1])
        tr.train(tokens[train[picks] - 1], lengths[train[picks] - 1], y[picks], w[picks], lams)
        got[fw], read[fw] = tr.params(), tr.predict(tokens, lengths)
    # Adam moves a weight by ~lr whatever its gradient's size, so float32 noise in
    # near-zero gradients shows up to a few 1e-4 after 5 steps of lr 1e-2
    for part in got["torch"]:
        for k in got["torch"][part]:
            np.testing.assert_allclose(got["torch"][part][k], got["tf"][part][k],
                                       atol=2e-3, err_msg=f"{part}.{k}")
    np.testing.assert_allclose(read["torch"], read["tf"], atol=2e-3)
    assert not np.allclose(got["torch"]["lstm"]["U"],
                           text.init_params(task, unit, [0, 1])["lstm"]["U"], atol=1e-3)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("unit", ["linear", "nau"])
def test_replica_matches_one_seed_run(framework, unit):
    def records(seeds):
        specs = suite.expand(["text_to_number"], [unit], [framework], seeds, TINY,
                             {"hidden_size": [8], "embedding_size": [4]})
        return {r["seed"]: r for r in runner.run_group(specs)}

    group, alone = records([0, 1, 2]), records([1])
    assert {r["status"] for r in group.values()} == {"ok"}
    curve = lambda r: np.array([r["curve"][k] for k in ("validation", "train")])  # noqa: E731
    np.testing.assert_allclose(curve(group[1]), curve(alone[1]), rtol=1e-4)
    assert group[1]["metrics"]["selected_step"] == alone[1]["metrics"]["selected_step"]
    assert not np.allclose(curve(group[0]), curve(group[1]))
    for key in ("mae_train", "mae_validation", "mae_test", "accuracy_test", "success",
                "interpolation_mse", "extrapolation_mse"):
        assert key in group[0]["metrics"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_diverging_replica_leaves_the_others_alone(framework, monkeypatch):
    original = text.init_params

    def explosive(task, unit, seeds):
        params = original(task, unit, seeds)
        params["output"]["W"][seeds.index(1)] = 1e30  # seed 1 overflows float32
        return params

    monkeypatch.setattr(text, "init_params", explosive)
    specs = suite.expand(["text_to_number"], ["linear"], [framework], [0, 1], TINY,
                         {"hidden_size": [8], "embedding_size": [4]})
    records = {r["seed"]: r for r in runner.run_group(specs)}
    assert records[1]["status"] == "diverged" and "non-finite" in records[1]["reason"]
    assert records[1]["metrics"]["success"] is False
    assert records[0]["status"] == "ok"


def test_last_readout_is_the_every_readout_at_the_number_s_end():
    task = TextToNumber(hidden_size=8, embedding_size=4)
    tokens, lengths = task.encoded()
    params = text.init_params(task, "nalu", [0, 1])
    every = text.forward(params, "nalu", tokens, lengths)
    last = text.forward(params, "nalu", tokens, lengths, readout="last")
    assert last.shape == (2, 999, 1)
    np.testing.assert_allclose(last[..., 0], text.final_values(every, lengths))
    np.testing.assert_allclose(text.final_values(last, lengths), last[..., 0])


def test_nalu_authors_parameters():
    task = TextToNumber(setting="nalu-authors")
    params = text.init_params(task, "nalu", [0, 1, 2])
    vocab = len(task.vocabulary) + 1
    assert params["embedding"]["E"].shape == (3, vocab, 256)
    assert params["lstm"]["W"].shape == (3, 256, 40) and params["lstm"]["U"].shape == (3, 10, 40)
    assert params["output"]["W_hat"].shape[-2:] == (10, 1)
    # TensorFlow's forget bias: the forget gate's 10 biases start 1 above the others' range
    k = 1 / np.sqrt(10)
    b = params["lstm"]["b"]
    assert (np.abs(b[:, 10:20] - 1.0) <= k).all() and (np.abs(np.delete(b, range(10, 20), 1))
                                                       <= k).all()
    plain = text.init_params(TextToNumber(embedding_size=256, hidden_size=10), "nalu", [0, 1, 2])
    np.testing.assert_allclose(b - plain["lstm"]["b"],
                               np.tile(np.r_[np.zeros(10), np.ones(10), np.zeros(20)], (3, 1)))
    _, lengths = task.encoded()
    y, w = text.loss_weights(task, np.array([12, 728]), lengths)
    assert y.shape == w.shape == (2, 1) and w.tolist() == [[1], [1]]
    assert y[:, 0] == pytest.approx([0.12, 7.28])


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("unit", ["linear", "nalu"])
def test_last_readout_forward_matches_reference(framework, unit):
    task = TextToNumber(setting="nalu-authors")
    tokens, lengths = task.encoded()
    params = text.init_params(task, unit, [0, 1])
    want = text.forward(params, unit, tokens, lengths, readout="last")
    got = registry.framework_module(framework, "text").Trainer(
        params, unit, lr=1e-3, readout="last").predict(tokens, lengths)
    assert got.shape == (2, 999, 1)
    np.testing.assert_allclose(got, want, rtol=1e-3 if unit == "nalu" else 1e-5, atol=1e-5)


@pytest.mark.skipif(any(registry.framework_missing(f) for f in registry.FRAMEWORKS),
                    reason="needs both frameworks")
def test_torch_and_tf_train_alike_at_the_authors_setting():
    task = TextToNumber(setting="nalu-authors")
    tokens, lengths = task.encoded()
    train = task.split()["train"]
    y, w = text.loss_weights(task, train, lengths)
    picks = np.random.default_rng(0).integers(0, len(train), size=(5, 2, 16))
    lams = np.zeros((5, 1), dtype=np.float32)
    got, read = {}, {}
    for fw in registry.FRAMEWORKS:
        tr = registry.framework_module(fw, "text").Trainer(
            text.init_params(task, "nalu", [0, 1]), "nalu", lr=1e-3, readout="last")
        tr.train(tokens[train[picks] - 1], lengths[train[picks] - 1], y[picks], w[picks], lams)
        got[fw], read[fw] = tr.params(), tr.predict(tokens, lengths)
    # 5 Adam steps of lr 1e-3 move a weight up to 5e-3; float32 noise in near-zero
    # gradients (an embedding row seen once) flips some of them, as in the test above
    for part in got["torch"]:
        for k in got["torch"][part]:
            np.testing.assert_allclose(got["torch"][part][k], got["tf"][part][k],
                                       atol=1e-3, err_msg=f"{part}.{k}")
    # NALU's exp(W log|h|) amplifies those differences near h = 0 (readings of 1e2-1e4)
    np.testing.assert_allclose(read["torch"], read["tf"], rtol=2e-2, atol=1e-3)
    assert not np.allclose(got["torch"]["output"]["W_hat"],
                           text.init_params(task, "nalu", [0, 1])["output"]["W_hat"])


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_setting_reaches_the_network_through_the_runner(framework):
    specs = suite.expand(["text_to_number"], ["linear"], [framework], [0, 1], TINY,
                         {"setting": ["nalu-authors"]})
    assert specs[0].params["readout"] == "last" and specs[0].params["embedding_size"] == 256
    records = runner.run_group(specs)
    assert {r["status"] for r in records} == {"ok"}
    assert records[0]["task_params"]["setting"] == "nalu-authors"
    assert len(records[0]["curve"]["train"]) == 3  # steps 0, 20, 40
