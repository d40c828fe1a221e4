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

    def forward(self, x, log_x=None):
        """log_x: log(|x| + eps) made ahead of time, used if the first unit takes it."""
        for j, unit in enumerate(self.units):
            x = unit(x, log_x) if j == 0 and log_x is not None else unit(x)
        return x

    @property
    def takes_log_input(self) -> bool:
        return self.units[0].takes_log_input

    def project_(self):
        for unit in self.units:
            unit.project_()
