"""The framework-free loop of the digit-sequence tasks (MNIST counting and addition).

A CNN reads each image, a recurrent core (a cell of `models.reference.CELLS`) runs over
the CNN outputs, and for the classic cells a linear readout maps the last state to the
answer (an arithmetic cell's state is the answer itself: hidden = outputs, no readout).

CNNs (`models.cnn.ARCHS`, with their numpy initialisation and forward pass), same
structure for both image sizes:
- 28x28 (MNIST, [NAU]): conv 20@5x5, ReLU, maxpool 2, conv 50@5x5, ReLU, maxpool 2,
  dense 800->500, ReLU, dense 500->outputs (valid convolutions).
- 8x8 (scikit-learn's digits), the smaller equivalent: conv 8@3x3, ReLU, maxpool 2,
  conv 16@3x3, ReLU, maxpool 2, dense 64->64, ReLU, dense 64->outputs ("same"
  convolutions: 8 -> 4 -> 2).
Every weight is initialised here in numpy (Glorot uniform, zero biases; the cell by
`reference.cell_init`), so a seed starts the same network in torch and tf. Convolution
kernels are (k, k, c_in, c_out) and feature maps are flattened as (H, W, C) in both.

Seeds train one after another (a loop over the group's specs, each its own network and
data stream): the convolutions carry no replica axis. Evaluation runs the CNN of the
framework once over the test images, then the core in numpy (`reference.cell_step`) over
the fixed test sequences, in chunks of sequences and one time step at a time, so memory
is bounded by chunk x hidden whatever the length.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from models import engine, reference, registry
from models.cnn import cnn_init
from tasks.base import DATA_STREAM, INIT_STREAM

EVAL_CHUNK = 1000  # sequences run through the core at once


def init(task, cell: str, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Every parameter of one seed's network: {"cnn": .., "cell": .., "readout": ..}."""
    n_out, hidden = task.n_out, task.hidden(cell)
    out = {"cnn": cnn_init(task.digits.side, n_out,
                           np.random.default_rng([seed, INIT_STREAM, 0])),
           "cell": reference.cell_init(registry.check_cell(cell), n_out, hidden,
                                       np.random.default_rng([seed, INIT_STREAM, 1])),
           "readout": {}}
    if not reference.CELLS[cell].unit:
        out["readout"] = reference.init("linear", hidden, n_out,
                                        np.random.default_rng([seed, INIT_STREAM, 2]))
    return out


def core_predict(cell: str, params: dict, features: np.ndarray, idx: np.ndarray,
                 chunk: int = EVAL_CHUNK) -> np.ndarray:
    """Answers for sequences idx (N, L) of images whose CNN outputs are ``features``."""
    features = np.asarray(features, dtype=np.float64)
    out = []
    for i in range(0, len(idx), chunk):
        rows = idx[i:i + chunk]
        state = reference.cell_zero_state(cell, params["cell"], len(rows))
        h = state[0]
        with np.errstate(all="ignore"):
            for t in range(rows.shape[1]):
                h, state = reference.cell_step(cell, params["cell"], features[rows[:, t]],
                                               state)
            if params["readout"]:
                h = reference.forward("linear", params["readout"], h)
        out.append(h)
    return np.concatenate(out)


# ---------------------------------------------------------------- the loop
def _mse(task, cell, params, features, length) -> float:
    idx, y = task.eval_sets[length]
    with np.errstate(all="ignore"):
        return float(np.mean((core_predict(cell, params, features, idx) - y) ** 2))


def _one(tree):
    """A replica axis of one on every array of a nest of dicts (what `engine.fit` keeps)."""
    if isinstance(tree, dict):
        return {k: _one(v) for k, v in tree.items()}
    return np.asarray(tree)[None]


def train_one(task, spec, progress=None) -> tuple[dict, float]:
    """One seed: train, evaluate on schedule (stopping once diverged), select on the
    training length, then predict every test length with the selected network."""
    cell = spec.unit
    images = task.digits
    module = registry.framework_module(spec.framework, "image_sequence")
    trainer = module.Trainer(init(task, cell, spec.seed), cell, images.train_images,
                             lr=spec.lr, device=spec.device)
    rng = np.random.default_rng([spec.seed, DATA_STREAM])
    train_len, first = task.params["train_length"], task.headline_length
    cfg = engine.TrainConfig.of(spec)
    unit = reference.CELLS[cell].unit
    now: dict = {}
    untrained: dict = {}  # the network at step 0: the normalised errors' scale

    def batches(n: int) -> dict:
        idx, ys = task.train_batch(rng, n, spec.batch_size)
        return {"idx": idx, "ys": ys}

    def evaluate() -> dict[str, np.ndarray]:
        now["params"], now["features"] = trainer.state(), trainer.features(images.test_images)
        untrained.setdefault("net", dict(now))
        return {name: np.array([_mse(task, cell, now["params"], now["features"], length)])
                for name, length in (("interpolation", train_len), ("extrapolation", first))}

    # one chunk per evaluation interval: the batches are drawn as they always were
    result = engine.fit(trainer, [cell], batches, evaluate, cfg, 1,
                        lams=lambda steps: engine.regulariser_weights([unit], cfg, steps)[:, 0],
                        chunk=cfg.eval_interval, keep=lambda: _one(now),
                        watch=("interpolation",), stop_when_diverged=True, progress=progress,
                        streams=[rng], carry=untrained)
    best = result.seed(0).best
    predictions = {length: core_predict(cell, best["params"], best["features"],
                                        task.eval_sets[length][0])
                   for length in task.eval_lengths}
    seed = result.seed(0)
    others = [L for L in task.eval_lengths if L not in (train_len, first)]  # not at step 0
    net = untrained["net"]
    seed = replace(seed, best=predictions, extra={**seed.extra, "untrained_mse": {
        L: _mse(task, cell, net["params"], net["features"], L) for L in others}})
    out = engine.results(result, lambda _: task.metrics(seed), finite_only=True)
    return out[0], result.step_seconds


def run_group(task, specs, progress=None) -> tuple[list[dict], float]:
    """The seeds of one configuration, one after another (see the module docstring)."""
    registry.check_cell(specs[0].unit)
    return engine.run_seeds(train_one, task, specs, progress)
