"""What every PyTorch unit shares: the `Unit` base class and the replica-aware matmul."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models import reference

EPS = reference.EPS


class Unit(nn.Module):
    """Base: parameters from a dict of numpy arrays keyed by the reference's names."""

    name = ""
    # Units whose first op on the input is log(|x| + eps) take it precomputed as
    # ``forward(x, log_x)``: the trainer makes it on the data thread (models/torch/train.py).
    takes_log_input = False
    # A unit that runs as one autograd.Function with replicated weights names it here:
    # ``node.apply(x, log_x, *node_params())`` is its forward pass, and the trainer may
    # call the node's forward and backward itself, without autograd's engine
    # (models/torch/train.py). None: the unit is a graph of autograd ops.
    node: type[torch.autograd.Function] | None = None

    def node_params(self) -> tuple[torch.Tensor, ...]:
        return ()

    def __init__(self, params: dict[str, np.ndarray]):
        super().__init__()
        self.spec = reference.UNITS[self.name]
        missing = set(self.spec.params) - set(params)
        if missing:
            raise ValueError(f"{self.name}: missing parameters {sorted(missing)}")
        for key in self.spec.params:
            self.register_parameter(key, nn.Parameter(_stored(params[key])))

    def get_params(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k).detach().cpu().numpy().copy() for k in self.spec.params}

    @torch.no_grad()
    def set_params(self, params: dict[str, np.ndarray]) -> None:
        for k in self.spec.params:
            getattr(self, k).copy_(torch.as_tensor(np.asarray(params[k]), dtype=torch.float32))

    def regulariser(self) -> torch.Tensor | None:
        """Per-replica regulariser, or None for units without one. The default is [NAU]'s
        sparsity regulariser on ``weight()``; a unit with its own penalty overrides this."""
        if not self.spec.regularised:
            return None
        a = self.weight().abs()
        return torch.minimum(a, 1 - a).mean(dim=(-2, -1))

    @torch.no_grad()
    def project_(self) -> None:
        """Keep W inside its clip range after an optimiser step."""
        if self.spec.clip is not None:
            self.W.clamp_(*self.spec.clip)


def _stored(value) -> torch.Tensor:
    """A parameter as float32. A per-replica matrix (R, n, o) keeps its shape but lies in
    memory as (R, o, n): `_mm` then reads all replicas' weights as one (R*o, n) matrix
    without a copy, and every activation comes out (R, o, B) in memory, whichever path made
    it. Mixing memory layouts in one element-wise op makes it strided, not vectorised
    (docs/performance.md)."""
    a = np.asarray(value, dtype=np.float32)
    if a.ndim != 3:
        return torch.tensor(a)
    return torch.tensor(np.ascontiguousarray(np.swapaxes(a, 1, 2))).transpose(1, 2)


def _mm(x, w):
    """x @ w, out as an (R, B, o) view of (R, o, B) memory (see `_stored`). A shared input
    (B, n) or (1, B, n) against replicated w (R, n, o) is one GEMM with R*o rows, not R
    broadcast copies of x."""
    # (one replica with its own input stays a batched GEMM, so a one-seed run rounds as
    # its replica in a group does)
    if w.dim() == 3 and (x.dim() == 2 or (x.dim() == 3 and x.shape[0] == 1 < w.shape[0])):
        rows = x.reshape(-1, x.shape[-1])
        r, n, o = w.shape
        return (w.transpose(1, 2).reshape(r * o, n) @ rows.t()).view(r, o, -1).transpose(1, 2)
    if w.dim() == 3 and x.dim() == 3:
        # (W^T x^T)^T: MKL's batched GEMM is faster (forward + backward) with the batch
        # as the wide dimension than with n_out = 2 columns
        return torch.bmm(w.transpose(1, 2), x.transpose(1, 2)).transpose(1, 2)
    return torch.matmul(x, w)


def log_abs(x, log_x=None):
    """log(|x| + eps), or the precomputed one."""
    return torch.log(x.abs() + EPS) if log_x is None else log_x


def _bias(b):
    return b.unsqueeze(-2)


def per_replica(fn, p: torch.Tensor) -> torch.Tensor:
    """fn(p) for an element-wise fn, each replica's block (p[r]) in a loop of its own.

    PyTorch runs a contiguous tensor as one flat loop: SIMD in blocks of 32 floats, the
    rest by the scalar function, and the SIMD and scalar tanh, sigmoid or exp can differ
    by an ulp. So which of replica r's weights get the scalar result would depend on R,
    and NALU's training amplifies one ulp: its replica would drift from its one-seed run.
    Writing into rows padded to a multiple of 32 keeps the loops apart, so every replica's
    weights round alike whatever R is."""
    if p.dim() < 2 or p.shape[0] == 0:
        return fn(p)
    r, block = p.shape[0], p[0].numel()
    if 1 + sum((n - 1) * st for n, st in zip(p.shape[1:], p.stride()[1:])) != block:
        p = p.contiguous()  # a replica's block with gaps (a sliced view): make it dense
    padded = -(-block // 32) * 32
    out = torch.empty(r * padded, dtype=p.dtype, device=p.device)
    return fn(p, out=out.as_strided(p.shape, (padded, *p.stride()[1:])))


class _NacWeight(torch.autograd.Function):
    """tanh(W_hat) * sigmoid(M_hat), the transcendental ops computed per replica
    (`per_replica`); the gradient is autograd's, op for op."""

    @staticmethod
    def forward(ctx, w_hat, m_hat):
        t, s = per_replica(torch.tanh, w_hat), per_replica(torch.sigmoid, m_hat)
        ctx.save_for_backward(t, s)
        return t * s

    @staticmethod
    def backward(ctx, grad):
        t, s = ctx.saved_tensors
        return (torch.ops.aten.tanh_backward(grad * s, t),
                torch.ops.aten.sigmoid_backward(grad * t, s))


def nac_weight(unit):
    return _NacWeight.apply(unit.W_hat, unit.M_hat)


def nac_w(w_hat, m_hat, scale: float = 1.0):
    """tanh(scale w_hat) * sigmoid(scale m_hat): the NAC weight of any pair of parameters."""
    if scale != 1.0:
        w_hat, m_hat = scale * w_hat, scale * m_hat
    return _NacWeight.apply(w_hat, m_hat)


def weights_am(unit):
    """Additive and multiplicative NAC weights side by side (sparsity is measured on both)."""
    return torch.cat([nac_w(unit.W_hat_a, unit.M_hat_a), nac_w(unit.W_hat_m, unit.M_hat_m)],
                     dim=-1)
