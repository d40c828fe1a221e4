"""A recurrent cell and an output unit trained for R replicas at once in TensorFlow
(the loop itself: models/sequence.py).

Training: a chunk of steps is one XLA-compiled ``tf.while_loop``; inside a step the
training length (10) is unrolled, so the gradient is plain backpropagation through
time. Evaluation: a ``tf.while_loop`` over time steps (not unrolled, not XLA), so one
traced function serves every length, and memory does not grow with the length.
"""
from __future__ import annotations

import numpy as np

from models.tf import cells, units
from models.tf.base import TFTrainer, adam
from models.tf.cells import keras, tf
from models.tf.steps import CompiledSteps


class SequenceNet(keras.layers.Layer):
    """The cell reads a sequence; the output unit maps its last hidden state."""

    def __init__(self, cell: tuple[str, dict], out: tuple[str, dict]):
        super().__init__(name="sequence_net", dtype="float32")
        self.cell = cells.make(*cell)
        self.out = units.make(*out)
        self.units = [self.cell, self.out]  # regulariser and projection, in layer order
        self.built = True

    def unrolled(self, xs, length: int):
        """xs (R or 1, B, L, n_in) with a static length L -> (R, B, n_out)."""
        state = self.cell.zero_state(tf.shape(xs)[-3])
        h = state[0]
        for t in range(length):
            h, state = self.cell(self.cell.inputs(xs[..., t, :], t == length - 1), state)
        return self.out(h)

    def looped(self, xs):
        """A shared set xs (B, L, n_in) of any length L -> (R, B, n_out)."""
        state = self.cell.zero_state(tf.shape(xs)[0])
        steps = tf.shape(xs)[1]

        def body(t, state):
            return t + 1, self.cell(self.cell.inputs(xs[:, t, :], t == steps - 1), state)[1]
        _, state = tf.while_loop(lambda t, _: t < steps, body, (tf.constant(0), state),
                                 parallel_iterations=1)
        return self.out(state[0])

    def project_(self):
        for unit in self.units:
            unit.project_()


class Trainer(TFTrainer):
    """One Adam over every replica; the loss is summed over replicas so each replica's
    gradient is its own."""

    def __init__(self, cell: tuple[str, dict], out: tuple[str, dict], lr: float,
                 device: str = "cpu", length: int = 10, jit_compile: bool = True):
        super().__init__(device)
        self.length = int(length)
        with tf.device(self.device):
            self.net = SequenceNet(cell, out)
            self.vars = [v.value for v in self.net.trainable_variables]
            self.opt = adam(lr, self.net.trainable_variables)
        self._regularised = [j for j, u in enumerate(self.net.units)
                             if u.regulariser() is not None]
        seq = tf.TensorSpec([None, None, None, self.length, None], tf.float32)
        self._train = CompiledSteps(self._step, [
            seq, tf.TensorSpec([None, None, None, None], tf.float32),
            tf.TensorSpec([None, None], tf.float32)], jit_compile=jit_compile)
        self._forward = tf.function(self.net.looped, input_signature=[
            tf.TensorSpec([None, None, None], tf.float32)], autograph=False)

    def _step(self, x, y, lam):
        self._mse_step(lambda: self.net.unrolled(x, self.length), y, lam)

    def reserve(self, steps: int) -> None:
        """Compile the step loop for chunks of up to ``steps`` (models/engine.py)."""
        self._train.reserve(steps)

    def train(self, xs: np.ndarray, ys: np.ndarray, lams: np.ndarray) -> None:
        with tf.device(self.device):
            self._train(xs, ys, lams)

    def errors(self, x: np.ndarray, y: np.ndarray, chunk: int = 2000) -> np.ndarray:
        """Per-replica MSE on a shared set x (N, L, n_in), targets y (R, N, n_out)."""
        total = 0.0
        with tf.device(self.device):
            for i in range(0, x.shape[0], chunk):
                pred = self._forward(np.asarray(x[i:i + chunk], dtype=np.float32))
                err = pred.numpy().astype(np.float64) - np.asarray(y[:, i:i + chunk], np.float64)
                total = total + (err ** 2).sum(axis=(-2, -1))
        return np.asarray(total / (x.shape[0] * y.shape[-1]))
