"""The units in TensorFlow / Keras 3, same names, shapes and math as `models/reference.py`.

Parameters may carry a leading replica axis; every op broadcasts over it, so R
seeds run as one batched program (tf.matmul broadcasts (B, n_in) against (R, n_in, n_out)).
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from models import reference  # noqa: E402

# Each Trainer traces its own compiled step once; TF counts those traces per function
# *code* and warns about "retracing" when a sweep builds many Trainers. Not a problem here.
tf.get_logger().setLevel("ERROR")

EPS = reference.EPS


class Unit(keras.layers.Layer):
    """Base: float32 weights from a dict of numpy arrays keyed by the reference's names."""

    name = ""  # the unit name; also passed to Keras as the layer name

    def __init__(self, params: dict[str, np.ndarray]):
        unit = type(self).name
        super().__init__(name=unit, dtype="float32")
        self.spec = reference.UNITS[unit]
        missing = set(self.spec.params) - set(params)
        if missing:
            raise ValueError(f"{unit}: missing parameters {sorted(missing)}")
        for key in self.spec.params:
            value = np.asarray(params[key], dtype=np.float32)
            setattr(self, key, self.add_weight(
                shape=value.shape, name=key, dtype="float32", trainable=True,
                initializer=lambda shape, dtype=None, v=value: tf.constant(v)))
        self.built = True

    def get_params(self) -> dict[str, np.ndarray]:
        return {k: np.array(getattr(self, k).numpy(), copy=True) for k in self.spec.params}

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        for k in self.spec.params:
            getattr(self, k).assign(np.asarray(params[k], dtype=np.float32))

    def regulariser(self) -> tf.Tensor | None:
        """Per-replica sparsity regulariser, or None for units without one."""
        if not self.spec.regularised:
            return None
        a = tf.abs(self.weight())
        return tf.reduce_mean(tf.minimum(a, 1.0 - a), axis=[-2, -1])

    def project_(self) -> None:
        """Keep W inside its clip range after an optimiser step (explicit assign, no constraint)."""
        if self.spec.clip is not None:
            self.W.assign(tf.clip_by_value(self.W, *self.spec.clip))

    project = project_


def _bias(b):
    return tf.expand_dims(b, -2)


def nac_weight(unit):
    return tf.tanh(unit.W_hat) * tf.sigmoid(unit.M_hat)


class Linear(Unit):
    name = "linear"

    def weight(self):
        return tf.convert_to_tensor(self.W)

    def call(self, x):
        return tf.matmul(x, self.W) + _bias(self.b)


class ReLU(Linear):
    name = "relu"

    def call(self, x):
        return tf.nn.relu(super().call(x))


class ReLU6(Linear):
    name = "relu6"

    def call(self, x):
        return tf.clip_by_value(super().call(x), 0.0, 6.0)


class NAC(Unit):
    """NAC+: W is rebuilt from W_hat, M_hat on every forward pass."""

    name = "nac"

    def weight(self):
        return nac_weight(self)

    def call(self, x):
        return tf.matmul(x, nac_weight(self))


class NACMul(NAC):
    name = "nacmul"

    def call(self, x):
        return tf.exp(tf.matmul(tf.math.log(tf.abs(x) + EPS), nac_weight(self)))


class NALU(NAC):
    """The paper's NALU: one NAC weight shared by the additive and multiplicative paths."""

    name = "nalu"

    def call(self, x):
        w = nac_weight(self)
        g = tf.sigmoid(tf.matmul(x, self.G))
        m = tf.exp(tf.matmul(tf.math.log(tf.abs(x) + EPS), w))
        return g * tf.matmul(x, w) + (1.0 - g) * m


class NAU(Unit):
    name = "nau"

    def weight(self):
        return tf.clip_by_value(self.W, -1.0, 1.0)

    def call(self, x):
        return tf.matmul(x, self.weight())


class NMU(Unit):
    name = "nmu"

    def weight(self):
        return tf.clip_by_value(self.W, 0.0, 1.0)

    def call(self, x):
        w = tf.expand_dims(self.weight(), -3)
        return tf.reduce_prod(tf.expand_dims(x, -1) * w + 1.0 - w, axis=-2)


CLASSES = {cls.name: cls for cls in (Linear, ReLU, ReLU6, NAC, NACMul, NALU, NAU, NMU)}


def make(unit: str, params: dict[str, np.ndarray]) -> Unit:
    return CLASSES[unit](params)
