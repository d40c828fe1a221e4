"""NALU with separate NAC weights for its additive and multiplicative paths."""
from __future__ import annotations

from models.tf.units.base import EPS, Unit, _mm, nac_w, tf, weights_am


class NALUSep(Unit):
    name = "nalu_sep"

    def weight(self):
        return weights_am(self)

    def call(self, x):
        g = tf.sigmoid(_mm(x, self.G))
        a = _mm(x, nac_w(self.W_hat_a, self.M_hat_a))
        m = tf.exp(_mm(tf.math.log(tf.abs(x) + EPS), nac_w(self.W_hat_m, self.M_hat_m)))
        return g * a + (1.0 - g) * m
