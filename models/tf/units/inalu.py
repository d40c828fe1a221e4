"""iNALU [iNALU]: separate weights, input-independent gate, sign recovery, clipped log-space sum."""
from __future__ import annotations

from models import reference
from models.tf.units.base import Unit, _bias, _mm, nac_w, tf, weights_am


class INALU(Unit):
    name = "inalu"

    def weight(self):
        return weights_am(self)

    def call(self, x):
        wa, wm = nac_w(self.W_hat_a, self.M_hat_a), nac_w(self.W_hat_m, self.M_hat_m)
        a = _mm(x, wa)
        z = _mm(tf.math.log(tf.maximum(tf.abs(x), reference.INALU_EPS)), wm)
        m = tf.exp(tf.minimum(z, reference.INALU_OMEGA))
        aw = tf.expand_dims(tf.abs(wm), -3)
        sign = tf.reduce_prod(tf.expand_dims(tf.sign(x), -1) * aw + 1.0 - aw, axis=-2)
        g = tf.sigmoid(_bias(self.g))
        return g * a + (1.0 - g) * m * sign

    def regulariser(self):
        total = 0.0
        for k in ("W_hat_a", "M_hat_a", "W_hat_m", "M_hat_m", "g"):
            axes = [-1] if k == "g" else [-2, -1]
            total = total + tf.reduce_mean(
                tf.nn.relu(reference.INALU_T - tf.abs(getattr(self, k))), axis=axes)
        return total
