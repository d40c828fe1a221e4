"""Linear, ReLU, ReLU6: the MLP baselines."""
from __future__ import annotations

import torch

from models.torch.units.base import Unit, _bias, _mm


class Linear(Unit):
    name = "linear"

    def weight(self):
        return self.W

    def forward(self, x):
        return _mm(x, self.W) + _bias(self.b)


class ReLU(Linear):
    name = "relu"

    def forward(self, x):
        return torch.relu(super().forward(x))


class ReLU6(Linear):
    name = "relu6"

    def forward(self, x):
        return torch.clamp(super().forward(x), 0.0, 6.0)
