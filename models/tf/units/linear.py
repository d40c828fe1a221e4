"""Linear, ReLU, ReLU6: the MLP baselines."""
from __future__ import annotations

from models.tf.units.base import Unit, _bias, _mm, tf


class Linear(Unit):
    name = "linear"

    def weight(self):
        return tf.convert_to_tensor(self.W)

    def call(self, x):
        return _mm(x, self.W) + _bias(self.b)


class ReLU(Linear):
    name = "relu"

    def call(self, x):
        return tf.nn.relu(super().call(x))


class ReLU6(Linear):
    name = "relu6"

    def call(self, x):
        return tf.clip_by_value(super().call(x), 0.0, 6.0)
