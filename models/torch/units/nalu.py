"""NALU [NALU]."""
from __future__ import annotations

import torch

from models.torch.units.base import EPS, _mm, nac_weight
from models.torch.units.nac import NAC


class NALU(NAC):
    """The paper's NALU: one NAC weight shared by the additive and multiplicative paths."""

    name = "nalu"

    def forward(self, x):
        w = nac_weight(self)
        g = torch.sigmoid(_mm(x, self.G))
        m = torch.exp(_mm(torch.log(x.abs() + EPS), w))
        return g * _mm(x, w) + (1 - g) * m
