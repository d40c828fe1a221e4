"""NAU and NMU [NAU]."""
from __future__ import annotations

from models.tf.units.base import Unit, _mm, tf


class NAU(Unit):
    name = "nau"

    def weight(self):
        return tf.clip_by_value(self.W, -1.0, 1.0)

    def call(self, x):
        return _mm(x, self.weight())


class NMU(Unit):
    name = "nmu"

    def weight(self):
        return tf.clip_by_value(self.W, 0.0, 1.0)

    def call(self, x):
        w = tf.expand_dims(self.weight(), -3)
        return tf.reduce_prod(tf.expand_dims(x, -1) * w + 1.0 - w, axis=-2)
