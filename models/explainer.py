"""The explainer's experiment as its code trains it: the static task's
``protocol=explainer``, which ``--budget explainer`` sets (docs/explainer-protocol.md has
every setting with its source line).

Here: its initialisation (`init`), its fixed full-batch training set (`FixedBatches`) and
its loss, ``tf.nn.l2_loss`` = half the sum of squared errors (`loss_scale`). The loop is
`models.supervised.run_group`'s, with the model after the last step kept (no selection).
"""
from __future__ import annotations

import numpy as np

from models import reference

INIT_SD = 0.02  # tf.truncated_normal(shape, stddev=0.02) for W_hat, M_hat and G


def truncated_normal(rng: np.random.Generator, sd: float, size) -> np.ndarray:
    """N(0, sd^2) conditioned on |x| <= 2 sd, as ``tf.truncated_normal`` draws it: values
    beyond two standard deviations are drawn again."""
    out = rng.normal(0.0, sd, size=size)
    bad = np.abs(out) > 2 * sd
    while bad.any():
        out[bad] = rng.normal(0.0, sd, size=int(bad.sum()))
        bad = np.abs(out) > 2 * sd
    return out


def init(unit: str, n_in: int, n_out: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One replica's initial parameters: every parameter of ``unit`` (shapes as the suite's
    `models.reference.init`) from the truncated normal with sd `INIT_SD`, in the order the
    unit lists them. For NALU that is the explainer's W_hat, M_hat and G; other units get
    the same rule so that they compare on one protocol."""
    shapes = {k: v.shape for k, v in reference.init(unit, n_in, n_out,
                                                     np.random.default_rng(0)).items()}
    return {k: truncated_normal(rng, INIT_SD, shape) for k, shape in shapes.items()}


def loss_scale(batch_size: int, n_out: int) -> float:
    """The factor turning the per-replica MSE into ``tf.nn.l2_loss``: N * n_out / 2."""
    return batch_size * n_out / 2.0


class FixedBatches:
    """Every step's batch is the same full training set: each replica's
    `StaticArithmetic.train_set`, drawn once here. A chunk of T steps is a read-only
    broadcast view (stride 0 along the steps), so nothing is drawn or copied per step; the
    trainers prepare such a chunk once (`models/*/train.Trainer.prepare`). ``rngs`` (the
    streams a checkpoint saves) is empty: nothing is drawn after construction, and a
    resumed fit draws the same sets again."""

    def __init__(self, tasks_: list, instances: list, seeds: list[int], size: int):
        sets = [t.train_set(inst, s, size) for t, inst, s in zip(tasks_, instances, seeds)]
        self.x = np.stack([x for x, _ in sets])  # (R, N, n_in)
        self.y = np.stack([y for _, y in sets])  # (R, N, n_out)
        self.rngs: list[np.random.Generator] = []

    def __call__(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """(T, R, N, n_in) inputs and (T, R, N, n_out) targets, views of the one set."""
        return (np.broadcast_to(self.x, (steps, *self.x.shape)),
                np.broadcast_to(self.y, (steps, *self.y.shape)))
