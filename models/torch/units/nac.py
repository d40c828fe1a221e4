"""NAC+ and NAC* [NALU]."""
from __future__ import annotations

import torch

from models.torch.units.base import EPS, Unit, _mm, nac_weight


class NAC(Unit):
    """NAC+: W is rebuilt from W_hat, M_hat on every forward pass."""

    name = "nac"

    def weight(self):
        return nac_weight(self)

    def forward(self, x):
        return _mm(x, nac_weight(self))


class NACMul(NAC):
    name = "nacmul"

    def forward(self, x):
        return torch.exp(_mm(torch.log(x.abs() + EPS), nac_weight(self)))
