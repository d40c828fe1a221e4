"""Supervised training of R replicas at once in TensorFlow (adapter: models/supervised.py,
loop: models/engine.py)."""
from __future__ import annotations

import numpy as np

from models.tf.base import TFTrainer, adam
from models.tf.nets import Stack
from models.tf.steps import CompiledSteps, padded
from models.tf.units import tf

_SEQ = tf.TensorSpec([None, None, None, None], tf.float32)
_SET = tf.TensorSpec([None, None, None], tf.float32)


def _one_set(xs, ys) -> bool:
    """Whether a numpy chunk repeats one set at every step (stride 0 along the steps)."""
    return (isinstance(xs, np.ndarray) and isinstance(ys, np.ndarray) and xs.ndim == 4
            and xs.strides[0] == 0 and ys.strides[0] == 0)


class Trainer(TFTrainer):
    """One Adam over every replica; the loss is summed over replicas so each
    replica's gradient is its own. T steps run as one compiled while-loop; with
    ``jit_compile`` (default) XLA fuses it (`CompiledSteps`: compiled once per trainer).
    ``loss_scale``: as the torch trainer's (`models.tf.base.TFTrainer._mse_step`)."""

    def __init__(self, layers: list[tuple[str, dict[str, np.ndarray]]], lr: float,
                 device: str = "cpu", jit_compile: bool = True, clip_grad: float | None = None,
                 loss_scale: float = 1.0):
        super().__init__(device)
        self.clip_grad = clip_grad
        self.loss_scale = float(loss_scale)
        self.replicas = len(next(iter(layers[0][1].values())))
        with tf.device(self.device):
            self.net = Stack(layers)
            self.vars = [v.value for v in self.net.trainable_variables]
            self.opt = adam(lr, self.net.trainable_variables)
        self._regularised = [j for j, u in enumerate(self.net.units) if u.spec.regularised]
        self._train = CompiledSteps(self._step, [_SEQ, _SEQ, _SET], jit_compile=jit_compile)
        # every step on one set (models.explainer.FixedBatches): the set passed once
        self._train_fixed = CompiledSteps(self._step, [_SET, _SET, _SET],
                                          jit_compile=jit_compile, fixed=2)
        self._forward = tf.function(self.net.call, input_signature=[
            tf.TensorSpec([None, None], tf.float32)], autograph=False, jit_compile=jit_compile)
        self._forward_own = tf.function(self.net.call, input_signature=[
            tf.TensorSpec([None, None, None], tf.float32)], autograph=False,
            jit_compile=jit_compile)

    def _step(self, x, y, lam):
        self._mse_step(lambda: self.net.call(x), y, lam)

    def reserve(self, steps: int) -> None:
        """Compile the step loop for chunks of up to ``steps`` (models/engine.py)."""
        self._train.reserve(steps)
        self._train_fixed.reserve(steps)

    def prepare(self, xs: np.ndarray, ys: np.ndarray) -> dict:
        """A chunk padded and copied into tensors, on the data thread (models/engine.py):
        the copy (30 MB a chunk with 64 seeds' own inputs) then overlaps training instead of
        starting each call of the step loop. A chunk whose steps are one set (numpy stride 0
        along the steps: `models.explainer.FixedBatches`) is copied once, not per step."""
        with tf.device(self.device):
            if _one_set(xs, ys):
                x, y = self._train_fixed.stage(xs[0], ys[0])
                return {"xs": x, "ys": y, "steps": xs.shape[0], "one_set": True}
            xs_t, ys_t = self._train.stage(xs, ys)
        return {"xs": xs_t, "ys": ys_t, "steps": xs.shape[0]}

    def train(self, xs, ys, lams: np.ndarray, steps: int | None = None,
              one_set: bool = False) -> None:
        """``steps`` of the chunk (xs, ys), numpy arrays or `prepare`'s padded tensors
        (``one_set``: the one set every step trains on); lams (T, layers) or per replica
        (T, R, layers)."""
        if lams.ndim == 2:  # one signature: the loop always takes per-replica weights
            lams = np.broadcast_to(lams[:, None, :], (len(lams), self.replicas, lams.shape[1]))
        if not one_set and _one_set(xs, ys):
            xs, ys, one_set = xs[0], ys[0], True
        with tf.device(self.device):
            (self._train_fixed if one_set else self._train)(xs, ys, lams, steps=steps)

    def errors(self, x: np.ndarray, y: np.ndarray, chunk: int = 2000,
               own: bool = False) -> np.ndarray:
        """Per-replica MSE on a shared input set x (N, n_in), or with ``own`` on each
        replica's own set x (R, N, n_in), against targets y (R, N, n_out). A short last
        chunk is padded to the chunk's size, so XLA compiles one shape."""
        total = 0.0
        n = x.shape[1 if own else 0]
        size = min(chunk, n)
        forward = self._forward_own if own else self._forward
        with tf.device(self.device):
            for i in range(0, n, chunk):
                if own:
                    part = np.asarray(x[:, i:i + chunk], dtype=np.float32)
                    rows = part.shape[1]
                    part = np.swapaxes(padded(np.swapaxes(part, 0, 1), size), 0, 1)
                else:
                    part = np.asarray(x[i:i + chunk], dtype=np.float32)
                    rows = len(part)
                    part = padded(part, size)
                pred = forward(part)[:, :rows]
                err = pred.numpy().astype(np.float64) - np.asarray(y[:, i:i + chunk], np.float64)
                total = total + (err ** 2).sum(axis=(-2, -1))
        return np.asarray(total / (n * y.shape[-1]))
