"""A recurrent cell and an output unit trained for R replicas at once in PyTorch
(the loop itself: models/sequence.py)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.torch import cells, units
from models.torch.base import TorchTrainer


class SequenceNet(nn.Module):
    """The cell reads a sequence; the output unit maps its last hidden state."""

    def __init__(self, cell: tuple[str, dict], out: tuple[str, dict]):
        super().__init__()
        self.cell = cells.make(*cell)
        self.out = units.make(*out)
        self.units = [self.cell, self.out]  # regulariser and projection, in layer order

    def forward(self, xs):
        """xs (R or 1, B, L, n_in) or a shared (B, L, n_in) -> (R, B, n_out)."""
        state = self.cell.zero_state(xs.shape[-3])
        h = state[0]
        steps = xs.shape[-2]
        for t in range(steps):
            h, state = self.cell(self.cell.inputs(xs[..., t, :], t == steps - 1), state)
        return self.out(h)

    def project_(self):
        for unit in self.units:
            unit.project_()


class Trainer(TorchTrainer):
    """One Adam over every replica; the loss is summed over replicas so each replica's
    gradient is its own. ``length`` (the training length) is only needed by tf."""

    def __init__(self, cell: tuple[str, dict], out: tuple[str, dict], lr: float,
                 device: str = "cpu", length: int | None = None, threads: int | None = 1):
        super().__init__(device, threads)
        self.net = SequenceNet(cell, out).to(self.device)
        self.layers = self.net.units
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)

    def train(self, xs: np.ndarray, ys: np.ndarray, lams: np.ndarray) -> None:
        with self.threading():
            self._train(self.tensor(xs), self.tensor(ys), lams)

    def _train(self, xs, ys, lams) -> None:
        units = self.net.units
        regularised = [j for j, u in enumerate(units) if u.regulariser() is not None]
        for t in range(xs.shape[0]):
            loss = ((self.net(xs[t]) - ys[t]) ** 2).mean(dim=(-2, -1))
            for j in regularised:
                if lams[t, j] > 0:
                    loss = loss + float(lams[t, j]) * units[j].regulariser()
            self.opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            self.opt.step()
            self.net.project_()

    def errors(self, x: np.ndarray, y: np.ndarray, chunk: int = 2000) -> np.ndarray:
        """Per-replica MSE on a shared set x (N, L, n_in), targets y (R, N, n_out)."""
        with self.threading():
            return super().errors(x, y, chunk)
