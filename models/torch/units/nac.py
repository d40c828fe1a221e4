"""NAC+ and NAC* [NALU]."""
from __future__ import annotations

import torch

from models.torch.units.base import Unit, _mm, log_abs, nac_weight


class NAC(Unit):
    """NAC+: W is rebuilt from W_hat, M_hat on every forward pass."""

    name = "nac"

    def weight(self):
        return nac_weight(self)

    def forward(self, x):
        return _mm(x, nac_weight(self))


class NACMul(NAC):
    name = "nacmul"
    takes_log_input = True

    def forward(self, x, log_x=None):
        return torch.exp(_mm(log_abs(x, log_x), nac_weight(self)))
