"""NPU and RealNPU [NPU]: (real) power units with a relevance gate, L1-regularised."""
from __future__ import annotations

import math

import torch

from models import reference
from models.torch.units.base import Unit, _bias, _mm


def _inputs(unit, x):
    g = _bias(torch.clamp(unit.g, 0.0, 1.0))
    log_r = torch.log(g * (x.abs() + reference.NPU_EPS) + 1 - g)
    return log_r, g * math.pi * (x < 0).to(x.dtype)


def _l1(unit):
    return sum(getattr(unit, k).abs().sum(dim=(-1,) if k == "g" else (-2, -1))
               for k in unit.spec.params)


class NPU(Unit):
    name = "npu"

    def weight(self):
        return torch.cat([self.W_re, self.W_im], dim=-1)

    def forward(self, x):
        log_r, k = _inputs(self, x)
        return (torch.exp(_mm(log_r, self.W_re) - _mm(k, self.W_im))
                * torch.cos(_mm(k, self.W_re) + _mm(log_r, self.W_im)))

    def regulariser(self):
        return _l1(self)


class RealNPU(Unit):
    name = "realnpu"

    def weight(self):
        return self.W_re

    def forward(self, x):
        log_r, k = _inputs(self, x)
        return torch.exp(_mm(log_r, self.W_re)) * torch.cos(_mm(k, self.W_re))

    def regulariser(self):
        return _l1(self)
