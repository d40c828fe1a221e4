"""NAC+ and NAC* [NALU]."""
from __future__ import annotations

from models.tf.units.base import EPS, Unit, nac_weight, tf


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
