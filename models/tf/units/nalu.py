"""NALU [NALU]."""
from __future__ import annotations

from models.tf.units.base import EPS, nac_weight, tf
from models.tf.units.nac import NAC


class NALU(NAC):
    """The paper's NALU: one NAC weight shared by the additive and multiplicative paths."""

    name = "nalu"

    def call(self, x):
        w = nac_weight(self)
        g = tf.sigmoid(tf.matmul(x, self.G))
        m = tf.exp(tf.matmul(tf.math.log(tf.abs(x) + EPS), w))
        return g * tf.matmul(x, w) + (1.0 - g) * m
