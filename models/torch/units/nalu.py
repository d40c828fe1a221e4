"""NALU [NALU]."""
from __future__ import annotations

import torch

from models.torch.units.base import _mm, log_abs, nac_weight
from models.torch.units.nac import NAC


class NALU(NAC):
    """The paper's NALU: one NAC weight shared by the additive and multiplicative paths."""

    name = "nalu"
    takes_log_input = True

    def forward(self, x, log_x=None):
        w = nac_weight(self)
        g = torch.sigmoid(_mm(x, self.G))
        m = torch.exp(_mm(log_abs(x, log_x), w))
        return g * _mm(x, w) + (1 - g) * m
