"""Supervised training of R replicas at once in TensorFlow (loop: models/supervised.py)."""
from __future__ import annotations

import numpy as np

from models.tf.nets import Stack
from models.tf.steps import CompiledSteps, padded
from models.tf.units import keras, tf

_SEQ = tf.TensorSpec([None, None, None, None], tf.float32)


def _device(device: str) -> str:
    kind = device.split(":")[0].lower()
    if kind == "cpu":
        return "/CPU:0"
    if kind in ("cuda", "gpu"):
        if not tf.config.list_physical_devices("GPU"):
            raise RuntimeError(f"device {device!r} requested but TensorFlow sees no GPU")
        return "/GPU:0"
    raise ValueError(f"unknown device {device!r}; use cpu, cuda or gpu")


class Trainer:
    """One Adam over every replica; the loss is summed over replicas so each
    replica's gradient is its own. T steps run as one compiled while-loop; with
    ``jit_compile`` (default) XLA fuses it (`CompiledSteps`: compiled once per trainer)."""

    def __init__(self, layers: list[tuple[str, dict[str, np.ndarray]]], lr: float,
                 device: str = "cpu", jit_compile: bool = True):
        self.device = _device(device)
        with tf.device(self.device):
            self.net = Stack(layers)
            self.vars = [v.value for v in self.net.trainable_variables]
            # epsilon=1e-8 as torch; Keras adds it to sqrt(v) before bias correction.
            self.opt = keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8)
            self.opt.build(self.net.trainable_variables)
        self._regularised = [j for j, u in enumerate(self.net.units) if u.spec.regularised]
        self._train = CompiledSteps(self._step, [_SEQ, _SEQ, tf.TensorSpec(
            [None, None], tf.float32)], jit_compile=jit_compile)
        self._forward = tf.function(self.net.call, input_signature=[
            tf.TensorSpec([None, None], tf.float32)], autograph=False, jit_compile=jit_compile)

    def _step(self, x, y, lam):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self.net.call(x) - y), axis=[-2, -1])
            for j in self._regularised:  # lam = 0 adds exactly nothing, as torch's skip
                loss = loss + lam[j] * self.net.units[j].regulariser()
            total = tf.reduce_sum(loss)
        grads = tape.gradient(total, self.vars)
        self.opt.apply_gradients(zip(grads, self.net.trainable_variables))
        self.net.project_()

    def reserve(self, steps: int) -> None:
        """Compile the step loop for chunks of up to ``steps`` (models/supervised.py)."""
        self._train.reserve(steps)

    def prepare(self, xs: np.ndarray, ys: np.ndarray) -> dict:
        """A chunk padded and copied into tensors, on the data thread (models/supervised.py):
        the copy (30 MB a chunk with 64 seeds' own inputs) then overlaps training instead of
        starting each call of the step loop."""
        with tf.device(self.device):
            xs_t, ys_t = self._train.stage(xs, ys)
        return {"xs": xs_t, "ys": ys_t, "steps": xs.shape[0]}

    def train(self, xs, ys, lams: np.ndarray, steps: int | None = None) -> None:
        """``steps`` of the chunk (xs, ys), numpy arrays or `prepare`'s padded tensors."""
        with tf.device(self.device):
            self._train(xs, ys, lams, steps=steps)

    def errors(self, x: np.ndarray, y: np.ndarray, chunk: int = 2000) -> np.ndarray:
        """Per-replica MSE on a shared input set x (N, n_in), targets y (R, N, n_out).
        A short last chunk is padded to the chunk's size, so XLA compiles one shape."""
        total = 0.0
        rows = min(chunk, x.shape[0])
        with tf.device(self.device):
            for i in range(0, x.shape[0], chunk):
                part = np.asarray(x[i:i + chunk], dtype=np.float32)
                pred = self._forward(padded(part, rows))[:, :len(part)]
                err = pred.numpy().astype(np.float64) - np.asarray(y[:, i:i + chunk], np.float64)
                total = total + (err ** 2).sum(axis=(-2, -1))
        return np.asarray(total / (x.shape[0] * y.shape[-1]))

    def params(self) -> list[dict[str, np.ndarray]]:
        return [u.get_params() for u in self.net.units]

    def reinit(self, mask: np.ndarray, layers: list[dict[str, np.ndarray] | None]) -> None:
        """Give the replicas in ``mask`` (R,) the parameters ``layers`` (per layer, arrays
        with one row per selected replica; None keeps the layer) and zero their Adam
        moments; other replicas are untouched. Adam's step count (``iterations``) is shared
        by all replicas, so it goes on (models.supervised.Reinit)."""
        mask = np.asarray(mask, dtype=bool)
        with tf.device(self.device):
            for unit, new in zip(self.net.units, layers):
                for k, value in (new or {}).items():
                    var = getattr(unit, k)
                    data = var.numpy()
                    data[mask] = np.asarray(value, dtype=np.float32)
                    var.assign(data)
                    i = self.opt._get_variable_index(var)
                    for slots in (self.opt._momentums, self.opt._velocities):
                        moment = slots[i].numpy()
                        moment[mask] = 0.0
                        slots[i].assign(moment)
