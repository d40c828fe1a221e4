"""NAU and NMU [NAU]."""
from __future__ import annotations

import torch

from models.torch.units.base import Unit, _mm


class NAU(Unit):
    name = "nau"

    def weight(self):
        return torch.clamp(self.W, -1.0, 1.0)

    def forward(self, x):
        return _mm(x, self.weight())


class NMU(Unit):
    name = "nmu"

    def weight(self):
        return torch.clamp(self.W, 0.0, 1.0)

    def forward(self, x):
        w = self.weight().unsqueeze(-3)
        return torch.prod(x.unsqueeze(-1) * w + 1 - w, dim=-2)
