"""The engine's fit loop: chunk sizes, data that does not depend on them, model selection,
divergence and stopping."""
from __future__ import annotations

import numpy as np
import pytest

from models import engine


class Recorder:
    """A trainer that trains nothing and keeps every chunk it is given."""

    def __init__(self):
        self.chunks, self.lams, self.reserved = [], [], None

    def reserve(self, steps):
        self.reserved = steps

    def train(self, xs, ys, lams):
        self.chunks.append(xs.copy())
        self.lams.append(lams)

    def errors(self, x, y, chunk=2000):
        return np.zeros(y.shape[0])

    def params(self):
        return [{"W": np.zeros((1, 1, 1))}]


def _fit(chunk_bytes, steps=2500):
    rng = np.random.default_rng(0)

    def batches(n):
        return rng.random((n, 1, 4, 3), dtype=np.float32), np.zeros((n, 1, 4, 1), np.float32)

    trainer = Recorder()
    cfg = engine.TrainConfig(steps=steps, eval_interval=1000, chunk_bytes=chunk_bytes)
    engine.fit(trainer, ["nau"], lambda n: dict(zip(("xs", "ys"), batches(n))),
               lambda: {"interpolation": trainer.errors(None, np.zeros((1, 2, 1)))}, cfg, 1,
               lams=lambda steps: engine.regulariser_weights(["nau"], cfg, steps),
               chunk=engine.chunk_steps(cfg, 4 * 4 * 4),
               first_divisor=engine.FIRST_CHUNK_DIVISOR)
    return trainer


def test_first_chunk_is_short_and_the_longest_is_reserved():
    trainer = _fit(chunk_bytes=64 * 400)  # 400 steps per chunk
    sizes = [len(c) for c in trainer.chunks]
    assert sizes[0] == -(-400 // engine.FIRST_CHUNK_DIVISOR) == 25
    assert sizes[1] == 400 and sum(sizes) == 2500
    assert trainer.reserved == max(sizes) == 400
    # no chunk crosses an evaluation
    ends = np.cumsum(sizes)
    assert {1000, 2000, 2500} <= set(ends.tolist())


def test_chunking_does_not_change_the_data():
    a = np.concatenate(_fit(chunk_bytes=64 * 400).chunks)
    b = np.concatenate(_fit(chunk_bytes=64 * 37).chunks)
    assert a.shape == b.shape == (2500, 1, 4, 3)
    np.testing.assert_array_equal(a, b)


class Scripted:
    """A trainer whose 'parameters' are the number of steps it has trained, and whose
    evaluations follow a script: errors[e] is what evaluation e reports per replica."""

    def __init__(self, errors):
        self.errors_script, self.steps, self.e = np.asarray(errors, dtype=float), 0, 0

    def train(self, lams, **_):
        self.steps += len(lams)

    def params(self):
        return [{"W": np.full((self.errors_script.shape[1], 1), float(self.steps))}]

    def evaluate(self):
        out = {"interpolation": self.errors_script[self.e], "extrapolation":
               self.errors_script[self.e] * 10}
        self.e += 1
        return out


def _scripted(errors, **kwargs):
    trainer = Scripted(errors)
    cfg = engine.TrainConfig(steps=100 * (len(errors) - 1), eval_interval=100)
    result = engine.fit(trainer, ["nau"], lambda n: {}, trainer.evaluate, cfg,
                        trainer.errors_script.shape[1], lams=lambda s: np.zeros((len(s), 1)),
                        chunk=100, **kwargs)
    return trainer, result


def test_selection_keeps_each_replicas_best_and_marks_divergence():
    nan = np.nan
    #            replica 0  1    2
    _, fit = _scripted([[5.0, 5.0, 5.0],
                        [1.0, 6.0, nan],
                        [2.0, 0.5, 1.0],
                        [3.0, 0.7, 0.1]])
    np.testing.assert_array_equal(fit.best_index, [1, 2, 0])
    np.testing.assert_array_equal(fit.diverged_at, [-1, -1, 100])
    # what was kept at the selected evaluation: the steps trained by then
    np.testing.assert_array_equal(fit.best[0]["W"][:, 0], [100, 200, 0])
    seed = fit.seed(1)
    assert seed.selected_step == 200 and not seed.diverged
    np.testing.assert_array_equal(seed.errors["extrapolation"], [50, 60, 5, 7])


def test_watch_limits_divergence_to_the_named_quantities():
    trainer = Scripted([[1.0], [2.0]])
    trainer.evaluate = lambda: {"interpolation": np.array([1.0]),
                                "extrapolation": np.array([np.inf])}
    cfg = engine.TrainConfig(steps=100, eval_interval=100)
    kwargs = dict(lams=lambda s: np.zeros((len(s), 1)), chunk=100)
    fit = engine.fit(trainer, ["nau"], lambda n: {}, trainer.evaluate, cfg, 1, **kwargs)
    assert fit.diverged_at[0] == 0
    fit = engine.fit(trainer, ["nau"], lambda n: {}, trainer.evaluate, cfg, 1,
                     watch=("interpolation",), **kwargs)
    assert fit.diverged_at[0] == -1


def test_watching_nothing_selects_past_non_finite_errors():
    """[Primer]'s rule (``watch=()``): no replica is marked diverged; the lowest finite
    interpolation error over every evaluation is selected."""
    nan = np.nan
    _, fit = _scripted([[5.0, 5.0], [nan, 6.0], [2.0, np.inf], [3.0, 0.7]], watch=())
    np.testing.assert_array_equal(fit.diverged_at, [-1, -1])
    np.testing.assert_array_equal(fit.best_index, [2, 3])


@pytest.mark.parametrize("stop", [False, True])
def test_stop_when_every_replica_has_diverged(stop):
    trainer, fit = _scripted([[1.0], [np.nan], [1.0], [1.0]], stop_when_diverged=stop)
    assert fit.diverged_at[0] == 100
    assert (trainer.steps, fit.evaluated) == ((100, 2) if stop else (300, 4))
    results = engine.results(fit, lambda r: {}, finite_only=True)
    assert results[0]["status"] == "diverged"
    assert results[0]["reason"] == "non-finite error at step 100"
    assert results[0]["curve"]["step"] == ([0, 100] if stop else [0, 100, 200, 300])
    assert results[0]["curve"]["interpolation"][1] is None


@pytest.mark.parametrize("module", ["train", "sequence", "text", "image_sequence"])
@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_every_framework_trainer_implements_the_protocol(framework, module):
    from models import registry

    if registry.framework_missing(framework):
        pytest.skip(registry.framework_missing(framework))
    trainer = registry.framework_module(framework, module).Trainer
    assert issubclass(trainer, engine.Trainer)
    base = "TorchTrainer" if framework == "torch" else "TFTrainer"
    assert base in [c.__name__ for c in trainer.__mro__]
