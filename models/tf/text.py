"""Text to number in TensorFlow: embedding -> LSTM -> output unit, R replicas at once
(the loop and the numpy specification: models/text.py)."""
from __future__ import annotations

import numpy as np

from models.tf import cells
from models.tf.base import TFTrainer, adam
from models.tf.units import keras, make, tf


class Reader(keras.layers.Layer):
    """Reads token ids (R or 1, N, L) and gives the value after every prefix (R, N, L), or
    with ``readout="last"`` the final state's only (R, N, 1)."""

    def __init__(self, params: dict[str, dict[str, np.ndarray]], unit: str,
                 readout: str = "every"):
        super().__init__(name="reader", dtype="float32")
        self.readout = readout

        def weight(name, value):
            value = np.asarray(value, dtype=np.float32)
            return self.add_weight(shape=value.shape, name=name, dtype="float32",
                                   initializer=lambda shape, dtype=None, v=value: tf.constant(v))

        self.E = weight("E", params["embedding"]["E"])
        self.lstm = cells.make("lstm", params["lstm"])
        self.out = make(unit, params["output"])
        self.built = True

    def call(self, tokens, lengths):
        r = tf.shape(self.E)[0]
        shape = tf.shape(tokens)
        n, length = shape[-2], tokens.shape[-1]
        tokens = tf.broadcast_to(tokens, [r, n, length])
        x = tf.gather(self.E, tokens, batch_dims=1)  # (R, N, L, E)
        state = self.lstm.zero_state(n, r)
        live = tf.expand_dims(tf.range(length)[None, None, :] < lengths[..., None], -1)
        live = tf.broadcast_to(live, [r, n, length, 1])
        outs = []
        for t in range(length):  # past a sequence's end the state is held
            h_new, new = self.lstm(x[:, :, t], state)
            state = tuple(tf.where(live[:, :, t], a, b) for a, b in zip(new, state))
            outs.append(state[0])
        hidden = h_new.shape[-1]
        if self.readout == "last":  # the held state after the last token
            return tf.reshape(self.out(state[0]), [r, n, 1])
        hs = tf.reshape(tf.stack(outs, axis=2), [r, n * length, hidden])
        return tf.reshape(self.out(hs), [r, n, length])


class Trainer(TFTrainer):
    """One Adam over every replica; each replica's loss is its own mean over the batch.
    A chunk of steps is one traced ``tf.while_loop`` (graph mode: an LSTM unrolled over
    the tokens compiles in seconds under XLA, longer than a quick run trains)."""

    def __init__(self, params, unit: str, lr: float, device: str = "cpu",
                 jit_compile: bool = False, readout: str = "every"):
        super().__init__(device)
        with tf.device(self.device):
            self.net = Reader(params, unit, readout)
            self.vars = self.net.trainable_variables
            self.opt = adam(lr, self.vars)
        self._regularised = self.net.out.spec.regularised
        self.jit_compile = jit_compile
        self._train = self._predict = None  # traced on first use, for its sequence length

    def _trace(self, length: int) -> None:
        """Trace for sequences of ``length`` tokens (static: the LSTM is unrolled)."""
        def spec(*shape, dtype=tf.float32):
            return tf.TensorSpec(shape, dtype)

        ints = spec(None, None, None, length, dtype=tf.int32)
        k = 1 if self.net.readout == "last" else length  # values read per number
        self._train = tf.function(self._steps, input_signature=[
            ints, spec(None, None, None, dtype=tf.int32), spec(None, None, None, k),
            spec(None, None, None, k), spec(None, None)], autograph=False,
            jit_compile=self.jit_compile)
        self._predict = tf.function(self.net.call, input_signature=[
            spec(1, None, length, dtype=tf.int32), spec(1, None, dtype=tf.int32)],
            autograph=False, jit_compile=self.jit_compile)

    def _step(self, tokens, lengths, targets, weights, lam):
        with tf.GradientTape() as tape:
            pred = self.net(tokens, lengths)
            loss = tf.reduce_sum(weights * tf.square(pred - targets), axis=[-2, -1])
            loss = loss / tf.cast(tf.shape(tokens)[1], tf.float32)
            if self._regularised:  # lam = 0 adds exactly nothing, as torch's skip
                loss = loss + lam[0] * self.net.out.regulariser()
            total = tf.reduce_sum(loss)
        grads = tape.gradient(total, self.vars)
        self.opt.apply_gradients(zip(grads, self.vars))
        self.net.out.project_()

    def _steps(self, tokens, lengths, targets, weights, lams):
        def body(t):
            self._step(tokens[t], lengths[t], targets[t], weights[t], lams[t])
            return (t + 1,)
        tf.while_loop(lambda t: t < tf.shape(tokens)[0], body, (tf.constant(0),),
                      parallel_iterations=1)

    def train(self, tokens, lengths, targets, weights, lams) -> None:
        """T steps: tokens (T, R, B, L), targets and weights (T, R, B, K) (K: values read,
        `Reader`), lengths (T, R, B), lams (T, 1)."""
        if self._train is None:
            self._trace(np.shape(tokens)[-1])
        with tf.device(self.device):
            self._train(np.asarray(tokens, np.int32), np.asarray(lengths, np.int32),
                        np.asarray(targets, np.float32), np.asarray(weights, np.float32),
                        np.asarray(lams, np.float32))

    def predict(self, tokens, lengths) -> np.ndarray:
        """(R, N, K) values read (`Reader`), for shared tokens (N, L)."""
        if self._predict is None:
            self._trace(np.shape(tokens)[-1])
        with tf.device(self.device):
            return self._predict(np.asarray(tokens, np.int32)[None],
                                 np.asarray(lengths, np.int32)[None]).numpy()

    def params(self) -> dict[str, dict[str, np.ndarray]]:
        return {"embedding": {"E": self.net.E.numpy().copy()},
                "lstm": self.net.lstm.get_params(),
                "output": self.net.out.get_params()}
