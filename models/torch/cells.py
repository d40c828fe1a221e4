"""The recurrent cells in PyTorch, same names, shapes and math as `models/reference.py`.

LSTM, GRU and the simple RNNs are written out (not torch.nn.LSTM) so that every
parameter carries the leading replica axis and R seeds step as one program. An
arithmetic unit used as a cell, h_t = unit([x_t, h_{t-1}]), wraps the unit class of
`models/torch/units.py`, so the cell is the unit, with the same regulariser and
projection.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models import reference
from models.torch import units


def _mm(x, w):
    """x @ w for x (B, n), (R, B, n) and w (n, o), (R, n, o); per-replica products as
    (W^T x^T)^T, the faster of MKL's batched GEMMs here (see models/torch/units)."""
    if w.dim() == 3 and x.dim() == 3 and x.shape[0] == w.shape[0]:
        return torch.bmm(w.transpose(1, 2), x.transpose(1, 2)).transpose(1, 2)
    return torch.matmul(x, w)


def _bias(b):
    return b.unsqueeze(-2)


class Cell(nn.Module):
    """Base: ``cell(x_t, state) -> (h_t, state)``; x_t is (B, n_in), or (R, B, n_in) or
    a shared (B, n_in) when the parameters carry a replica axis R."""

    name = ""

    def __init__(self, params: dict[str, np.ndarray]):
        super().__init__()
        self.spec = reference.CELLS[self.name]
        missing = set(self.spec.params) - set(params)
        if missing:
            raise ValueError(f"{self.name} cell: missing parameters {sorted(missing)}")
        first = np.asarray(params[self.spec.params[0]])
        self.hidden = first.shape[-1] // self.spec.gates
        self.replicas = first.shape[0] if first.ndim == 3 else None
        self._build(params)

    def _build(self, params):
        for key in self.spec.params:
            self.register_parameter(key, nn.Parameter(torch.tensor(
                np.asarray(params[key]), dtype=torch.float32)))

    def _param(self, key):
        return getattr(self, key)

    def zero_state(self, batch: int, replicas: int | None = None) -> tuple:
        """Zeros (R, B, H) (R defaults to the parameters' replica axis) or (B, H)."""
        replicas = self.replicas if replicas is None else replicas
        shape = (batch, self.hidden) if replicas is None else (replicas, batch, self.hidden)
        device = self._param(self.spec.params[0]).device
        return tuple(torch.zeros(shape, device=device) for _ in range(self.spec.n_state))

    def get_params(self) -> dict[str, np.ndarray]:
        return {k: self._param(k).detach().cpu().numpy().copy() for k in self.spec.params}

    @torch.no_grad()
    def set_params(self, params: dict[str, np.ndarray]) -> None:
        for k in self.spec.params:
            self._param(k).copy_(torch.as_tensor(np.asarray(params[k]), dtype=torch.float32))

    def regulariser(self) -> torch.Tensor | None:
        """Per-replica regulariser of the unit behind the cell, or None."""
        return None

    @torch.no_grad()
    def project_(self) -> None:
        """Nothing to keep in range for the classic cells."""

    def inputs(self, x, last):
        """x_t as the cell reads it in a sequence loop (``last``: the final step)."""
        return x


def _linear(cell, x, h):
    """x W + h U + b, the pre-activation every classic cell starts from."""
    return _mm(x, cell.W) + _mm(h, cell.U) + _bias(cell.b)


class LSTM(Cell):
    name = "lstm"

    def forward(self, x, state):
        h, c = state
        i, f, g, o = _linear(self, x, h).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class GRU(Cell):
    name = "gru"

    def forward(self, x, state):
        (h,) = state
        xr, xz, xn = (_mm(x, self.W) + _bias(self.b)).chunk(3, dim=-1)
        hr, hz, hn = (_mm(h, self.U) + _bias(self.b_h)).chunk(3, dim=-1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        h = (1 - z) * torch.tanh(xn + r * hn) + z * h
        return h, (h,)


class RNNTanh(Cell):
    name = "rnn_tanh"

    def forward(self, x, state):
        h = torch.tanh(_linear(self, x, state[0]))
        return h, (h,)


class RNNReLU(Cell):
    name = "rnn_relu"

    def forward(self, x, state):
        h = torch.relu(_linear(self, x, state[0]))
        return h, (h,)


class UnitCell(Cell):
    """h_t = unit([x_t, h_{t-1}]) with the unit's own class and parameters."""

    def _build(self, params):
        self.unit = units.make(self.spec.unit, params)

    def _param(self, key):
        return getattr(self.unit, key)

    def forward(self, x, state):
        (h,) = state
        x = x.expand(*h.shape[:-1], x.shape[-1])  # a shared input meets R states
        h = self.unit(torch.cat([x, h], dim=-1))
        return h, (h,)

    def regulariser(self):
        return self.unit.regulariser()

    @torch.no_grad()
    def project_(self):
        self.unit.project_()


class MCLSTM(Cell):
    """MC-LSTM as its authors ran it on recurrent arithmetic (models/reference.py)."""

    name = "mclstm"

    def _build(self, params):
        super()._build(params)
        self.mass, self.aux = self.J.shape[-2], self.W_o.shape[-2]

    def forward(self, x, state):
        _, c = state
        o = torch.sigmoid(_mm(x[..., self.mass:], self.W_o) + _bias(self.b_o))
        m = (_mm(x[..., :self.mass], torch.softmax(self.J, dim=-1))
             + _mm(c, torch.softmax(self.r, dim=-1)))
        h = o * m
        return h, (h, (1 - o) * m)

    def inputs(self, x, last):
        """The auxiliary inputs appended: the end-of-sequence marker, -1 if last else 1."""
        if not self.aux:
            return x
        return torch.cat([x, x.new_full((*x.shape[:-1], self.aux), -1.0 if last else 1.0)], -1)


def _unit_cell(unit: str) -> type[UnitCell]:
    return type(f"{units.CLASSES[unit].__name__}Cell", (UnitCell,), {"name": unit})


CLASSES = {cls.name: cls for cls in (LSTM, GRU, RNNTanh, RNNReLU,
                                     *(_unit_cell(u) for u in ("nac", "nalu", "nau", "nmu")),
                                     MCLSTM)}


def make(cell: str, params: dict[str, np.ndarray]) -> Cell:
    return CLASSES[cell](params)
