"""NPU and RealNPU [NPU]: (real) power units with a relevance gate, L1-regularised."""
from __future__ import annotations

import math

from models import reference
from models.tf.units.base import Unit, _bias, _mm, tf


def _inputs(unit, x):
    g = _bias(tf.clip_by_value(unit.g, 0.0, 1.0))
    log_r = tf.math.log(g * (tf.abs(x) + reference.NPU_EPS) + 1.0 - g)
    return log_r, g * math.pi * tf.cast(x < 0, x.dtype)


def _l1(unit):
    return tf.add_n([tf.reduce_sum(tf.abs(getattr(unit, k)), axis=[-1] if k == "g" else [-2, -1])
                     for k in unit.spec.params])


class NPU(Unit):
    name = "npu"

    def weight(self):
        return tf.concat([self.W_re, self.W_im], axis=-1)

    def call(self, x):
        log_r, k = _inputs(self, x)
        return (tf.exp(_mm(log_r, self.W_re) - _mm(k, self.W_im))
                * tf.cos(_mm(k, self.W_re) + _mm(log_r, self.W_im)))

    def regulariser(self):
        return _l1(self)


class RealNPU(Unit):
    name = "realnpu"

    def weight(self):
        return tf.convert_to_tensor(self.W_re)

    def call(self, x):
        log_r, k = _inputs(self, x)
        return tf.exp(_mm(log_r, self.W_re)) * tf.cos(_mm(k, self.W_re))

    def regulariser(self):
        return _l1(self)
