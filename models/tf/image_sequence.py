"""CNN + recurrent core for the digit-sequence tasks in TensorFlow (loop:
models/image_sequence.py)."""
from __future__ import annotations

import numpy as np

from models.cnn import arch
from models.tf import cells, units
from models.tf.base import TFTrainer, adam
from models.tf.units import keras, tf


class CNN(keras.layers.Layer):
    """`models.cnn.cnn_forward` in TensorFlow (NHWC, kernels (k, k, c_in, c_out))."""

    def __init__(self, params: dict[str, np.ndarray], side: int):
        super().__init__(name="cnn", dtype="float32")
        self.padding = arch(side)[3].upper()
        self.keys = list(params)
        for key, value in params.items():
            value = np.asarray(value, dtype=np.float32)
            setattr(self, key, self.add_weight(
                shape=value.shape, name=key, dtype="float32", trainable=True,
                initializer=lambda shape, dtype=None, v=value: tf.constant(v)))
        self.built = True

    def call(self, images):  # (N, s, s) -> (N, out)
        x = tf.expand_dims(images, -1)
        for j in (1, 2):
            x = tf.nn.conv2d(x, getattr(self, f"conv{j}_W"), 1, self.padding)
            x = tf.nn.max_pool2d(tf.nn.relu(x + getattr(self, f"conv{j}_b")), 2, 2, "VALID")
        x = tf.reshape(x, [tf.shape(x)[0], -1])
        x = tf.nn.relu(tf.matmul(x, self.fc1_W) + self.fc1_b)
        return tf.matmul(x, self.fc2_W) + self.fc2_b

    def get_params(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k).numpy().astype(np.float64) for k in self.keys}


class Net(keras.layers.Layer):
    """images (B, T, s, s) -> CNN per image -> cell over T -> readout -> (B, out)."""

    def __init__(self, params, cell: str, side: int):
        super().__init__(name="image_sequence", dtype="float32")
        self.cnn = CNN(params["cnn"], side)
        self.cell = cells.make(cell, params["cell"])
        self.readout = units.make("linear", params["readout"]) if params["readout"] else None
        self.built = True

    def call(self, images):
        shape = tf.shape(images)
        b, t = shape[0], images.shape[1]  # T is static: the loop over time is unrolled
        x = tf.reshape(self.cnn(tf.reshape(images, tf.concat([[-1], shape[2:]], 0))),
                       [b, t, -1])
        state = self.cell.zero_state(b)
        h = state[0]
        for i in range(t):
            h, state = self.cell(x[:, i], state)
        return self.readout(h) if self.readout is not None else h


class Trainer(TFTrainer):
    """Adam on one seed's network. A chunk of steps runs as one compiled tf.while_loop
    (compiled once per distinct (S, B, T)); each step gathers its images by index."""

    def __init__(self, params, cell: str, images: np.ndarray, lr: float, device: str = "cpu"):
        super().__init__(device)
        with tf.device(self.device):
            self.net = Net(params, cell, images.shape[-1])
            self.images = tf.constant(np.asarray(images, dtype=np.float32))
            self.vars = [v.value for v in self.net.trainable_variables]
            self.opt = adam(lr, self.net.trainable_variables)
        self._regularised = self.net.cell.regulariser() is not None
        self._train = tf.function(self._steps, autograph=False, jit_compile=False)
        self._features = tf.function(self.net.cnn.call, autograph=False, reduce_retracing=True)

    def _step(self, idx, y, lam):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self.net(tf.gather(self.images, idx)) - y))
            if self._regularised:  # lam = 0 adds exactly nothing, as torch's skip
                loss = loss + lam * tf.reduce_sum(self.net.cell.regulariser())
        grads = tape.gradient(loss, self.vars)
        self.opt.apply_gradients(zip(grads, self.net.trainable_variables))
        self.net.cell.project_()

    def _steps(self, idx, ys, lams):
        def body(s):
            self._step(idx[s], ys[s], lams[s])
            return (s + 1,)
        tf.while_loop(lambda s: s < tf.shape(idx)[0], body, (tf.constant(0),),
                      parallel_iterations=1)

    def train(self, idx: np.ndarray, ys: np.ndarray, lams: np.ndarray) -> None:
        """len(idx) steps: idx (S, B, T) training-image indices, ys (S, B, out), lams (S,)."""
        with tf.device(self.device):
            self._train(tf.constant(np.asarray(idx, np.int32)),
                        tf.constant(np.asarray(ys, np.float32)),
                        tf.constant(np.asarray(lams, np.float32)))

    def features(self, images: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """The CNN's outputs for images (N, s, s), float64."""
        with tf.device(self.device):
            out = [self._features(tf.constant(np.asarray(images[i:i + chunk], np.float32)))
                   .numpy().astype(np.float64) for i in range(0, len(images), chunk)]
        return np.concatenate(out)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The whole network on sequences of images (B, T, s, s) (for tests)."""
        with tf.device(self.device):
            return self.net(tf.constant(np.asarray(images, np.float32))).numpy().astype(
                np.float64)

    def params(self) -> dict[str, dict[str, np.ndarray]]:
        return self.state()

    def state(self) -> dict[str, dict[str, np.ndarray]]:
        cell = {k: np.asarray(v, np.float64) for k, v in self.net.cell.get_params().items()}
        readout = ({k: np.asarray(v, np.float64) for k, v in self.net.readout.get_params().items()}
                   if self.net.readout is not None else {})
        return {"cnn": self.net.cnn.get_params(), "cell": cell, "readout": readout}
