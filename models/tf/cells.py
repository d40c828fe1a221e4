"""The recurrent cells in TensorFlow / Keras 3, same names, shapes and math as
`models/reference.py`.

LSTM, GRU and the simple RNNs are written out (not keras.layers.LSTM) so that every
parameter carries the leading replica axis and R seeds step as one program. An
arithmetic unit used as a cell, h_t = unit([x_t, h_{t-1}]), wraps the unit class of
`models/tf/units.py`, with the same regulariser and projection.
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from models import reference  # noqa: E402
from models.tf import units  # noqa: E402


def _bias(b):
    return tf.expand_dims(b, -2)


class Cell(keras.layers.Layer):
    """Base: ``cell(x_t, state) -> (h_t, state)``; x_t is (B, n_in), or (R, B, n_in) or
    a shared (B, n_in) when the parameters carry a replica axis R."""

    name = ""

    def __init__(self, params: dict[str, np.ndarray]):
        cell = type(self).name
        super().__init__(name=f"{cell}_cell", dtype="float32")
        self.spec = reference.CELLS[cell]
        missing = set(self.spec.params) - set(params)
        if missing:
            raise ValueError(f"{cell} cell: missing parameters {sorted(missing)}")
        first = np.asarray(params[self.spec.params[0]])
        self.hidden = first.shape[-1] // self.spec.gates
        self.replicas = first.shape[0] if first.ndim == 3 else None
        self._build(params)
        self.built = True

    def _build(self, params):
        for key in self.spec.params:
            value = np.asarray(params[key], dtype=np.float32)
            setattr(self, key, self.add_weight(
                shape=value.shape, name=key, dtype="float32", trainable=True,
                initializer=lambda shape, dtype=None, v=value: tf.constant(v)))

    def _param(self, key):
        return getattr(self, key)

    def zero_state(self, batch, replicas: int | None = None) -> tuple:
        """Zeros (R, B, H) (R defaults to the parameters' replica axis) or (B, H)."""
        replicas = self.replicas if replicas is None else replicas
        shape = [batch, self.hidden] if replicas is None else [replicas, batch, self.hidden]
        return tuple(tf.zeros(shape) for _ in range(self.spec.n_state))

    def get_params(self) -> dict[str, np.ndarray]:
        return {k: np.array(self._param(k).numpy(), copy=True) for k in self.spec.params}

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        for k in self.spec.params:
            self._param(k).assign(np.asarray(params[k], dtype=np.float32))

    def regulariser(self):
        """Per-replica regulariser of the unit behind the cell, or None."""
        return None

    def project_(self) -> None:
        """Nothing to keep in range for the classic cells."""

    def inputs(self, x, last):
        """x_t as the cell reads it in a sequence loop (``last``: the final step, a bool or
        a boolean tensor)."""
        return x


def _linear(cell, x, h):
    """x W + h U + b, the pre-activation every classic cell starts from."""
    return tf.matmul(x, cell.W) + tf.matmul(h, cell.U) + _bias(cell.b)


class LSTM(Cell):
    name = "lstm"

    def call(self, x, state):
        h, c = state
        i, f, g, o = tf.split(_linear(self, x, h), 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, (h, c)


class GRU(Cell):
    name = "gru"

    def call(self, x, state):
        (h,) = state
        xr, xz, xn = tf.split(tf.matmul(x, self.W) + _bias(self.b), 3, axis=-1)
        hr, hz, hn = tf.split(tf.matmul(h, self.U) + _bias(self.b_h), 3, axis=-1)
        r, z = tf.sigmoid(xr + hr), tf.sigmoid(xz + hz)
        h = (1.0 - z) * tf.tanh(xn + r * hn) + z * h
        return h, (h,)


class RNNTanh(Cell):
    name = "rnn_tanh"

    def call(self, x, state):
        h = tf.tanh(_linear(self, x, state[0]))
        return h, (h,)


class RNNReLU(Cell):
    name = "rnn_relu"

    def call(self, x, state):
        h = tf.nn.relu(_linear(self, x, state[0]))
        return h, (h,)


class UnitCell(Cell):
    """h_t = unit([x_t, h_{t-1}]) with the unit's own class and parameters."""

    def _build(self, params):
        self.unit = units.make(self.spec.unit, params)

    def _param(self, key):
        return getattr(self.unit, key)

    def call(self, x, state):
        (h,) = state
        x = tf.broadcast_to(x, tf.concat([tf.shape(h)[:-1], tf.shape(x)[-1:]], 0))
        h = self.unit(tf.concat([x, h], axis=-1))
        return h, (h,)

    def regulariser(self):
        return self.unit.regulariser()

    def project_(self):
        self.unit.project_()


class MCLSTM(Cell):
    """MC-LSTM as its authors ran it on recurrent arithmetic (models/reference.py)."""

    name = "mclstm"

    def _build(self, params):
        super()._build(params)
        self.mass, self.aux = self.J.shape[-2], self.W_o.shape[-2]

    def call(self, x, state):
        _, c = state
        o = tf.sigmoid(tf.matmul(x[..., self.mass:], self.W_o) + _bias(self.b_o))
        m = (tf.matmul(x[..., :self.mass], tf.nn.softmax(self.J, axis=-1))
             + tf.matmul(c, tf.nn.softmax(self.r, axis=-1)))
        h = o * m
        return h, (h, (1.0 - o) * m)

    def inputs(self, x, last):
        """The auxiliary inputs appended: the end-of-sequence marker, -1 if last else 1."""
        if not self.aux:
            return x
        sign = tf.where(last, -1.0, 1.0)
        marker = tf.ones(tf.concat([tf.shape(x)[:-1], [self.aux]], 0)) * sign
        return tf.concat([x, marker], axis=-1)


def _unit_cell(unit: str) -> type[UnitCell]:
    return type(f"{units.CLASSES[unit].__name__}Cell", (UnitCell,), {"name": unit})


CLASSES = {cls.name: cls for cls in (LSTM, GRU, RNNTanh, RNNReLU,
                                     *(_unit_cell(u) for u in ("nac", "nalu", "nau", "nmu")),
                                     MCLSTM)}


def make(cell: str, params: dict[str, np.ndarray]) -> Cell:
    return CLASSES[cell](params)
