"""NALU with separate NAC weights for its additive and multiplicative paths."""
from __future__ import annotations

import torch

from models.torch.units.base import EPS, Unit, _mm, nac_w, weights_am


class NALUSep(Unit):
    name = "nalu_sep"

    def weight(self):
        return weights_am(self)

    def forward(self, x):
        g = torch.sigmoid(_mm(x, self.G))
        a = _mm(x, nac_w(self.W_hat_a, self.M_hat_a))
        m = torch.exp(_mm(torch.log(x.abs() + EPS), nac_w(self.W_hat_m, self.M_hat_m)))
        return g * a + (1 - g) * m
