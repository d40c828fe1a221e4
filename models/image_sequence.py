"""The framework-free loop of the digit-sequence tasks (MNIST counting and addition).

A CNN reads each image and a core runs over the CNN's outputs (`models.digit_net`: the
suite's readout core, or [NAU]'s accumulator and its simplifications). A task answers after
the last image (the default) or, with ``answers = "every"`` ([NAU]'s sequential MNIST),
after every image: then the loss, every evaluated MSE and the predictions the task scores
((N, L, n_out) per test length) are over every step.

CNNs (`models.cnn.ARCHS`, with their numpy initialisation and forward pass), same
structure for both image sizes:
- 28x28 (MNIST, [NAU]): conv 20@5x5, ReLU, maxpool 2, conv 50@5x5, ReLU, maxpool 2,
  dense 800->500, ReLU, dense 500->outputs (valid convolutions).
- 8x8 (scikit-learn's digits), the smaller equivalent: conv 8@3x3, ReLU, maxpool 2,
  conv 16@3x3, ReLU, maxpool 2, dense 64->64, ReLU, dense 64->outputs ("same"
  convolutions: 8 -> 4 -> 2).
Every weight is initialised here in numpy (Glorot uniform, zero biases; the cell by
`reference.cell_init`; or [NAU]'s, ``Core.init == "nau"``), so a seed starts the same
network in torch and tf. Convolution
kernels are (k, k, c_in, c_out) and feature maps are flattened as (H, W, C) in both.

The seeds of a group train as one program (`engine.fit` with R replicas): every parameter
has a leading replica axis, and each seed draws its own batches from its own stream
(``[seed, DATA_STREAM]``), so a seed's batches and initialisation do not depend on which
seeds share its program. Evaluation runs the framework's CNN once over the test images
(every replica), then the core in numpy (`models.digit_net.step`) over the fixed test
sequences for all replicas at once, in chunks of sequences and one time step at a time, so
memory is bounded by replicas x chunk x hidden whatever the length (x length where every
step is an answer).

Model selection: on the task's validation sequences where it has them (``valid_set``:
(N, T) indices into ``digits.valid_images`` and their answers; [NAU] selects on their MSE),
else on the test sequences of the training length. The normalised errors' scale is the
untrained network's MSE at every test length (`engine.fit` evaluates the training and
headline lengths at step 0; the others are computed from the kept step-0 network).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from models import cnn, digit_net, engine, reference, registry
from models.digit_net import Core
from tasks.base import DATA_STREAM, INIT_STREAM

EVAL_CHUNK = 1000  # sequences run through the core at once


def init(task, cell: str | Core, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Every parameter of one seed's network: {"cnn": .., "cell": .., "readout": ..}; the
    cell's and the readout's are empty where the core has none."""
    core = cell if isinstance(cell, Core) else Core.of(task, cell)
    n_out = task.n_out
    out = {"cnn": cnn.cnn_init(task.digits.side, n_out,
                               np.random.default_rng([seed, INIT_STREAM, 0]),
                               "torch" if core.init == "nau" else "glorot"),
           "cell": {}, "readout": {}}
    if core.has_cell:
        hidden = core.hidden(n_out, task.params["hidden_size"])
        rng = np.random.default_rng([seed, INIT_STREAM, 1])
        out["cell"] = reference.cell_init(registry.check_cell(core.cell), n_out, hidden, rng)
        if core.init == "nau" and core.unit == "nau":
            out["cell"]["W"] = nau_init(rng, *out["cell"]["W"].shape)
        if core.readout():
            out["readout"] = reference.init("linear", hidden, n_out,
                                            np.random.default_rng([seed, INIT_STREAM, 2]))
    return out


def nau_init(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    """[NAU]'s NAU weight W (n_in, n_out) ~ U(-r, r), r = min(0.5, sqrt(3) sqrt(2 / (n_in +
    n_out))): 0.5 for the accumulator's 2 -> 1 cell (docs/sequential-mnist-protocol.md)."""
    r = min(0.5, np.sqrt(3.0) * np.sqrt(2.0 / (n_in + n_out)))
    return rng.uniform(-r, r, size=(n_in, n_out))


def core_predict(core: Core | str, params: dict, features: np.ndarray, idx: np.ndarray,
                 chunk: int = EVAL_CHUNK) -> np.ndarray:
    """Answers for sequences idx (N, L) of images whose CNN outputs are ``features``: (N, f)
    for one network, or (R, N, f) for R replicas whose parameters carry the replica axis.
    The output after the last image, (R, N, n_out); with ``core.every`` the output after
    every image, (R, N, L, n_out)."""
    core = Core(core) if isinstance(core, str) else core
    features = np.asarray(features, dtype=np.float64)
    out = []
    for i in range(0, len(idx), chunk):
        rows = idx[i:i + chunk]
        state = digit_net.start(core, params, (*features.shape[:-2], len(rows)),
                                features.shape[-1])
        steps = []
        with np.errstate(all="ignore"):
            for t in range(rows.shape[1]):
                h, state = digit_net.step(core, params, features[..., rows[:, t], :], state)
                if core.every:
                    steps.append(h)
        out.append(np.stack(steps, axis=-2) if core.every else h)
    return np.concatenate(out, axis=-3 if core.every else -2)


# ---------------------------------------------------------------- the loop
def _mse(core, params, features, sequences) -> np.ndarray:
    """The MSE of sequences (idx, answers) per replica (R,), or a float for one network:
    over every sequence and answer (every step where ``core.every``)."""
    idx, y = sequences
    with np.errstate(all="ignore"):
        err = core_predict(core, params, features, idx) - y
        return np.mean(err ** 2, axis=tuple(range(-np.ndim(y), 0)))


def _copy(tree):
    """A copy of every array in a nest of dicts: what `engine.fit` keeps is written into in
    place (`engine._copy_rows`), so it must not share arrays with the untrained network."""
    if isinstance(tree, dict):
        return {k: _copy(v) for k, v in tree.items()}
    return np.array(tree, copy=True)


def _bytes_per_step(task, core: Core, replicas: int, batch: int) -> int:
    """A step's drawn data: indices (R, B, T) and targets (R, B, [T,] n_out), 4 bytes each."""
    length = task.params["train_length"]
    return 4 * replicas * batch * (length + task.n_out * (length if core.every else 1))


def run_group(task, specs, progress=None) -> tuple[list[dict], float]:
    """The seeds of one configuration as one program (module docstring): train, evaluate
    on schedule (stopping once every replica diverged), select each replica on the
    validation sequences (or the test sequences of the training length), then predict
    every test length with each selected network."""
    first = specs[0]
    cell = registry.check_cell(first.unit)
    core = Core.of(task, cell)
    seeds = [s.seed for s in specs]
    images = task.digits
    module = registry.framework_module(first.framework, "image_sequence")
    trainer = module.Trainer(cnn.stack([init(task, core, s) for s in seeds]), core,
                             images.train_images, lr=first.lr, device=first.device)
    rngs = [np.random.default_rng([s, DATA_STREAM]) for s in seeds]
    train_len, headline = task.params["train_length"], task.headline_length
    cfg = engine.TrainConfig.of(first)
    now: dict = {}
    untrained: dict = {}  # the networks at step 0: the normalised errors' scale
    own = getattr(task, "regulariser_weights", None)

    def lams(steps):
        mine = own([core.unit], cfg, steps) if own is not None else None
        out = engine.regulariser_weights([core.unit], cfg, steps) if mine is None else mine
        return np.asarray(out)[:, 0]

    def batches(n: int) -> dict:
        drawn = [task.train_batch(g, n, first.batch_size) for g in rngs]
        return {"idx": np.stack([d[0] for d in drawn], axis=1),
                "ys": np.stack([d[1] for d in drawn], axis=1)}

    for length, (idx, y) in task.eval_sets.items():
        want = (*idx.shape, task.n_out) if core.every else (len(idx), task.n_out)
        if np.shape(y) != want:
            raise ValueError(f"{task.name}: answers={'every' if core.every else 'last'} needs "
                             f"test answers shaped {want} at length {length}, not "
                             f"{np.shape(y)}")
    valid = getattr(task, "valid_set", None)  # [NAU]: select on the validation sequences
    selects = "validation" if valid is not None else "interpolation"

    def evaluate() -> dict[str, np.ndarray]:
        now["params"], now["features"] = trainer.state(), trainer.features(images.test_images)
        untrained.setdefault("net", dict(now))
        out = {}  # the first selects the model
        if valid is not None:
            out["validation"] = _mse(core, now["params"], trainer.features(images.valid_images),
                                     valid)
        for name, length in (("interpolation", train_len), ("extrapolation", headline)):
            out[name] = _mse(core, now["params"], now["features"], task.eval_sets[length])
        return out

    result = engine.fit(trainer, [cell], batches, evaluate, cfg, len(seeds), lams=lams,
                        chunk=engine.chunk_steps(cfg, _bytes_per_step(task, core, len(seeds),
                                                                      first.batch_size)),
                        first_divisor=engine.FIRST_CHUNK_DIVISOR,  # training starts sooner
                        keep=lambda: _copy(now), watch=(selects,),
                        stop_when_diverged=True, progress=progress, streams=rngs,
                        carry=untrained)
    others = [L for L in task.eval_lengths if L not in (train_len, headline)]  # not at step 0
    net = untrained["net"]
    untrained_mse = {L: _mse(core, net["params"], net["features"], task.eval_sets[L])
                     for L in others}

    def metrics(r: int) -> dict:
        seed = result.seed(r)
        best = seed.best
        predictions = {length: core_predict(core, best["params"], best["features"],
                                            task.eval_sets[length][0])
                       for length in task.eval_lengths}
        return task.metrics(replace(seed, best=predictions, extra={
            **seed.extra, "untrained_mse": {L: float(v[r]) for L, v in untrained_mse.items()}}))

    return engine.results(result, metrics, finite_only=True), result.step_seconds
