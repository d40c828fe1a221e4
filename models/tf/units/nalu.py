"""NALU [NALU]."""
from __future__ import annotations

from models.tf.units.base import EPS, _mm, nac_weight, tf
from models.tf.units.nac import NAC


class NALU(NAC):
    """The paper's NALU: one NAC weight shared by the additive and multiplicative paths."""

    name = "nalu"

    def call(self, x):
        w = nac_weight(self)
        g = tf.sigmoid(_mm(x, self.G))
        m = tf.exp(_mm(tf.math.log(tf.abs(x) + EPS), w))
        return g * _mm(x, w) + (1.0 - g) * m
