"""The networks the tasks need, in PyTorch."""
from __future__ import annotations

import numpy as np
from torch import nn

from models.torch.units import make


class Stack(nn.Module):
    """Units applied one after another (the static task's two-layer network)."""

    def __init__(self, layers: list[tuple[str, dict[str, np.ndarray]]]):
        super().__init__()
        self.units = nn.ModuleList([make(name, params) for name, params in layers])

    def forward(self, x):
        for unit in self.units:
            x = unit(x)
        return x

    def project_(self):
        for unit in self.units:
            unit.project_()
