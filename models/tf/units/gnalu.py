"""G-NALU: NALU with the golden ratio as the base of its tanh and sigmoids ([Primer])."""
from __future__ import annotations

from models import reference
from models.tf.units.base import EPS, Unit, _mm, nac_w, tf


class GNALU(Unit):
    name = "gnalu"

    def weight(self):
        return nac_w(self.W_hat, self.M_hat, reference.LN_PHI)

    def call(self, x):
        w = self.weight()
        g = tf.sigmoid(reference.LN_PHI * _mm(x, self.G))
        return g * _mm(x, w) + (1.0 - g) * tf.exp(_mm(tf.math.log(tf.abs(x) + EPS), w))
