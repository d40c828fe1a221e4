"""NAC+ and NAC* [NALU]."""
from __future__ import annotations

from models.tf.units.base import EPS, Unit, _mm, nac_weight, tf


class NAC(Unit):
    """NAC+: W is rebuilt from W_hat, M_hat on every forward pass."""

    name = "nac"

    def weight(self):
        return nac_weight(self)

    def call(self, x):
        return _mm(x, nac_weight(self))


class NACMul(NAC):
    name = "nacmul"

    def call(self, x):
        return tf.exp(_mm(tf.math.log(tf.abs(x) + EPS), nac_weight(self)))
