"""CNN + recurrent core of the digit-sequence tasks in TensorFlow, R replicas (seeds) as one
program: every parameter has a leading replica axis and each replica reads its own images
(loop: models/image_sequence.py; the core: models/digit_net.py)."""
from __future__ import annotations

import numpy as np

from models.cnn import arch
from models.digit_net import Z_ADDITIVE, Core
from models.tf import cells, units
from models.tf.base import TFTrainer, adam
from models.tf.steps import padded
from models.tf.units import keras, tf


class CNN(keras.layers.Layer):
    """`models.cnn.cnn_forward` in TensorFlow for R replicas (NHWC, kernels (R, k, k, c_in,
    c_out)). The convolutions run one replica after another (TensorFlow has no grouped
    convolution's gradient on CPU), the dense layers as one batched product."""

    def __init__(self, params: dict[str, np.ndarray], side: int):
        super().__init__(name="cnn", dtype="float32")
        self.padding = arch(side)[3].upper()
        self.keys = list(params)
        self.replicas = int(np.shape(params["conv1_W"])[0])
        for key, value in params.items():
            value = np.asarray(value, dtype=np.float32)
            setattr(self, key, self.add_weight(
                shape=value.shape, name=key, dtype="float32", trainable=True,
                initializer=lambda shape, dtype=None, v=value: tf.constant(v)))
        self.built = True

    def call(self, images):  # (R, N, s, s) -> (R, N, out)
        maps = []
        for r in range(self.replicas):
            x = tf.expand_dims(images[r], -1)
            for j in (1, 2):
                x = tf.nn.conv2d(x, getattr(self, f"conv{j}_W")[r], 1, self.padding)
                x = tf.nn.max_pool2d(tf.nn.relu(x + getattr(self, f"conv{j}_b")[r]), 2, 2,
                                     "VALID")
            maps.append(tf.reshape(x, [tf.shape(x)[0], -1]))
        x = tf.nn.relu(tf.matmul(tf.stack(maps), self.fc1_W) + self.fc1_b[:, None])
        return tf.matmul(x, self.fc2_W) + self.fc2_b[:, None]

    def get_params(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k).numpy().astype(np.float64) for k in self.keys}


class Net(keras.layers.Layer):
    """images (R, B, T, s, s) -> CNN per image -> core over T (`models.digit_net.Core`)."""

    def __init__(self, params, core: Core, side: int):
        super().__init__(name="image_sequence", dtype="float32")
        self.core = core
        self.cnn = CNN(params["cnn"], side)
        self.cell = cells.make(core.cell, params["cell"]) if core.has_cell else None
        self.readout = units.make("linear", params["readout"]) if params["readout"] else None
        self.built = True

    def call(self, images, every: bool = False):
        """Outputs (R, B, T, n) after every image, or (R, B, n) after the last; and R_z per
        replica (R,) where the core has it on, else None. T is static (unrolled)."""
        shape = tf.shape(images)
        r, b, t = self.cnn.replicas, shape[1], images.shape[2]
        x = self.cnn(tf.reshape(images, tf.concat([[r, -1], shape[3:]], 0)))
        x = tf.reshape(x, [r, b, t, -1])
        core = self.core
        if self.cell is None:
            state = (tf.fill(tf.shape(x[:, :, 0]), tf.constant(core.initial, tf.float32)),)
        else:
            state = tuple(s + core.initial for s in self.cell.zero_state(b))
        outs, inputs = [], 0.0
        for i in range(t):
            x_t = x[:, :, i]
            if core.simplification == "pass-through":
                h = x_t
            elif core.simplification == "solved-accumulator":
                h = state[0] + x_t if core.accumulate == "sum" else state[0] * x_t
                state = (h,)
            else:
                if core.z:  # the unit's input [x_t, h_{t-1}], averaged over B and T
                    inputs = inputs + tf.reduce_mean(tf.concat([x_t, state[0]], -1), axis=1)
                h, state = self.cell(x_t, state)
                if self.readout is not None:
                    h = self.readout(h)
            outs.append(h)
        y = tf.stack(outs, axis=2) if every else outs[-1]
        return y, (self.z_penalty(inputs / t) if core.z else None)

    def z_penalty(self, x_mean):
        """`models.digit_net.z_penalty` on the unit's weight."""
        w = self.cell.unit.weight()
        x = x_mean[..., :, None]
        return tf.reduce_mean(((1 - tf.abs(w)) * x ** 2) if self.core.unit in Z_ADDITIVE
                              else ((1 - w) * (1 - x) ** 2), axis=[-2, -1])


class Trainer(TFTrainer):
    """One Adam over every replica; the loss is summed over replicas. A chunk of steps runs
    as one compiled tf.while_loop over its real steps, the chunk padded to the longest seen
    (compiled once per trainer and batch shape); each step gathers its images by index."""

    def __init__(self, params, core: Core, images: np.ndarray, lr: float, device: str = "cpu"):
        super().__init__(device)
        self.core = core
        with tf.device(self.device):
            self.net = Net(params, core, images.shape[-1])
            self.images = tf.constant(np.asarray(images, dtype=np.float32))
            self.vars = [v.value for v in self.net.trainable_variables]
            self.opt = adam(lr, self.net.trainable_variables)
        cell = self.net.cell
        self._regularised = cell is not None and cell.regulariser() is not None
        self._train = tf.function(self._steps, autograph=False, jit_compile=False)
        self._features = tf.function(self.net.cnn.call, autograph=False, reduce_retracing=True)
        self._predict = tf.function(lambda x: self.net(x, every=True)[0], autograph=False,
                                    reduce_retracing=True)
        self.capacity = 0

    def _step(self, idx, y, lam):
        with tf.GradientTape() as tape:
            pred, z = self.net(tf.gather(self.images, idx), every=self.core.every)
            loss = tf.reduce_mean(tf.square(pred - y), axis=list(range(1, len(pred.shape))))
            if self._regularised:  # lam = 0 adds exactly nothing, as torch's skip
                loss = loss + lam * self.net.cell.regulariser()
            if z is not None:
                loss = loss + self.core.z_weight * z
            total = tf.reduce_sum(loss)
        grads = tape.gradient(total, self.vars)
        self.opt.apply_gradients(zip(grads, self.net.trainable_variables))
        if self.net.cell is not None:
            self.net.cell.project_()

    def _steps(self, idx, ys, lams, n):
        def body(s):
            self._step(idx[s], ys[s], lams[s])
            return (s + 1,)
        tf.while_loop(lambda s: s < n, body, (tf.constant(0),), parallel_iterations=1)

    def reserve(self, steps: int) -> None:
        """Pad every chunk to at least ``steps`` steps (models/engine.py): one trace."""
        self.capacity = max(self.capacity, steps)

    def train(self, idx: np.ndarray, ys: np.ndarray, lams: np.ndarray) -> None:
        """len(idx) steps: idx (S, R, B, T) training-image indices, ys (S, R, B, n) or with
        ``core.every`` (S, R, B, T, n), lams (S,) or per replica (S, R)."""
        n = len(idx)
        self.capacity = max(self.capacity, n)
        lams = np.asarray(lams, np.float32)
        if lams.ndim == 1:  # one signature: per-replica weights
            lams = np.repeat(lams[:, None], self.net.cnn.replicas, axis=1)
        with tf.device(self.device):
            self._train(tf.constant(padded(np.asarray(idx, np.int32), self.capacity)),
                        tf.constant(padded(np.asarray(ys, np.float32), self.capacity)),
                        tf.constant(padded(lams, self.capacity)), tf.constant(n, tf.int32))

    def features(self, images: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """Every replica's CNN outputs for shared images (N, s, s): (R, N, out), float64."""
        r = self.net.cnn.replicas
        with tf.device(self.device):
            out = [self._features(tf.broadcast_to(
                tf.constant(np.asarray(images[i:i + chunk], np.float32)),
                (r, *images[i:i + chunk].shape))).numpy().astype(np.float64)
                for i in range(0, len(images), chunk)]
        return np.concatenate(out, axis=1)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Outputs after every image of the sequences (R, B, T, s, s): (R, B, T, n) (tests)."""
        with tf.device(self.device):
            return self._predict(tf.constant(np.asarray(images, np.float32))).numpy().astype(
                np.float64)

    def params(self) -> dict[str, dict[str, np.ndarray]]:
        return self.state()

    def state(self) -> dict[str, dict[str, np.ndarray]]:
        """Every parameter, float64, replica axis first: {"cnn", "cell", "readout"}."""
        net = self.net
        return {"cnn": net.cnn.get_params(),
                "cell": ({k: np.asarray(v, np.float64) for k, v in net.cell.get_params().items()}
                         if net.cell is not None else {}),
                "readout": ({k: np.asarray(v, np.float64)
                             for k, v in net.readout.get_params().items()}
                            if net.readout is not None else {})}
