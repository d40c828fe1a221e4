"""G-NALU: NALU with the golden ratio as the base of its tanh and sigmoids ([Primer])."""
from __future__ import annotations

import torch

from models import reference
from models.torch.units.base import EPS, Unit, _mm, nac_w


class GNALU(Unit):
    name = "gnalu"

    def weight(self):
        return nac_w(self.W_hat, self.M_hat, reference.LN_PHI)

    def forward(self, x):
        w = self.weight()
        g = torch.sigmoid(reference.LN_PHI * _mm(x, self.G))
        return g * _mm(x, w) + (1 - g) * torch.exp(_mm(torch.log(x.abs() + EPS), w))
