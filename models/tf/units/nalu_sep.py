"""NALU with separate NAC weights for its additive and multiplicative paths."""
from __future__ import annotations

from models.tf.units.base import EPS, Unit, nac_w, tf, weights_am


class NALUSep(Unit):
    name = "nalu_sep"

    def weight(self):
        return weights_am(self)

    def call(self, x):
        g = tf.sigmoid(tf.matmul(x, self.G))
        a = tf.matmul(x, nac_w(self.W_hat_a, self.M_hat_a))
        m = tf.exp(tf.matmul(tf.math.log(tf.abs(x) + EPS), nac_w(self.W_hat_m, self.M_hat_m)))
        return g * a + (1.0 - g) * m
