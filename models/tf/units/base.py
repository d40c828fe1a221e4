"""What every TensorFlow / Keras 3 unit shares: the `Unit` base class and helpers.

A shared input (B, n_in) against replicated (R, n_in, n_out) weights is one GEMM (`_mm`).
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
        """Per-replica regulariser, or None for units without one. The default is [NAU]'s
        sparsity regulariser on ``weight()``; a unit with its own penalty overrides this."""
        if not self.spec.regularised:
            return None
        a = tf.abs(self.weight())
        return tf.reduce_mean(tf.minimum(a, 1.0 - a), axis=[-2, -1])

    def project_(self) -> None:
        """Keep W inside its clip range after an optimiser step (explicit assign, no constraint)."""
        if self.spec.clip is not None:
            self.W.assign(tf.clip_by_value(self.W, *self.spec.clip))


def _mm(x, w):
    """x @ w. A shared input (B, n) against replicated w (R, n, o) is one GEMM with R*o
    columns: tf.matmul would broadcast x to R copies."""
    if len(w.shape) == 3 and len(x.shape) == 2:
        r, n, o = w.shape
        y = tf.matmul(x, tf.reshape(tf.transpose(w, (1, 0, 2)), (n, r * o)))
        return tf.transpose(tf.reshape(y, (-1, r, o)), (1, 0, 2))
    return tf.matmul(x, w)


def _bias(b):
    return tf.expand_dims(b, -2)


def nac_weight(unit):
    return tf.tanh(unit.W_hat) * tf.sigmoid(unit.M_hat)


def nac_w(w_hat, m_hat, scale: float = 1.0):
    """tanh(scale w_hat) * sigmoid(scale m_hat): the NAC weight of any pair of parameters."""
    return tf.tanh(scale * w_hat) * tf.sigmoid(scale * m_hat)


def weights_am(unit):
    """Additive and multiplicative NAC weights side by side (sparsity is measured on both)."""
    return tf.concat([nac_w(unit.W_hat_a, unit.M_hat_a), nac_w(unit.W_hat_m, unit.M_hat_m)],
                     axis=-1)
