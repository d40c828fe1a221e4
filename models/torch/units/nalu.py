"""NALU [NALU]."""
from __future__ import annotations

import torch

from models.torch.units.base import EPS, _mm, log_abs, nac_weight, per_replica
from models.torch.units.nac import NAC


def _shared_by(x, replicas: int) -> bool:
    """x is one input for every replica: (B, n), or (1, B, n) with more than one."""
    return x.dim() == 2 or (x.dim() == 3 and x.shape[0] == 1 < replicas)


def _wgrad(x, d):
    """dL/dW (R, n, o) of x @ W given d = dL/d(x @ W) (R, B, o), in the parameters' layout."""
    r, o = d.shape[0], d.shape[-1]
    dt = d.transpose(-1, -2)  # (R, o, B), contiguous in the activations' layout
    if _shared_by(x, r):
        rows = x.reshape(-1, x.shape[-1])
        return (dt.reshape(r * o, -1) @ rows).view(r, o, -1).transpose(1, 2)
    return torch.bmm(dt, x).transpose(1, 2)


def _xgrad(d, w):
    """dL/dx (R, B, n) of x @ W, as a view of (R, n, B) memory like the activations.
    With one output (o = 1) each element is one product: a broadcast product gives
    MKL's bits without its batched GEMM of many tiny matrices."""
    if w.shape[-1] == 1:
        return (w * d.transpose(1, 2)).transpose(1, 2)
    return torch.bmm(w, d.transpose(1, 2)).transpose(1, 2)


def _mm2(x, w):
    """x @ W for two inputs per replica (R, B, 2) @ (R, 2, o): w0 x0 + w1 x1, the
    products and sum MKL's batched GEMM rounds (tested), without its call; out as
    `_mm`'s, an (R, B, o) view of (R, o, B) memory. Other shapes go to `_mm`."""
    if w.dim() != 3 or w.shape[1] != 2 or _shared_by(x, w.shape[0]):
        return _mm(x, w)
    wt, xt = w.transpose(1, 2), x.transpose(1, 2)  # (R, o, 2), (R, 2, B)
    return (wt[:, :, 0:1] * xt[:, 0:1] + wt[:, :, 1:2] * xt[:, 1:2]).transpose(1, 2)


class _NALUFunction(torch.autograd.Function):
    """The NALU layer with replicated weights in one autograd node. Forward and backward
    run the ops autograd runs for `composed`, in its order, so every bit agrees (tested),
    without its graph of some 25 nodes per layer; the trainer may call it by hand
    (`models.torch.train.Trainer._step_by_hand`)."""

    @staticmethod
    def forward(ctx, x, log_x, w_hat, m_hat, g_w):
        t, s = per_replica(torch.tanh, w_hat), per_replica(torch.sigmoid, m_hat)
        w = t * s
        absx = None
        if log_x is None:
            absx = x.abs() + EPS
            log_x = torch.log(absx)
        a = _mm2(x, w)
        m = torch.exp(_mm2(log_x, w))
        g = torch.sigmoid(_mm2(x, g_w))
        not_g = 1 - g
        ctx.save_for_backward(x, log_x, absx, t, s, w, g_w, a, m, g, not_g)
        return g * a + not_g * m

    @staticmethod
    def backward(ctx, dy):
        x, log_x, absx, t, s, w, g_w, a, m, g, not_g = ctx.saved_tensors
        d_a = dy * g
        d_l = dy * not_g * m
        d_g = torch.ops.aten.sigmoid_backward(dy * a - dy * m, g)
        d_w = _wgrad(x, d_a) + _wgrad(log_x, d_l)
        d_w_hat = torch.ops.aten.tanh_backward(d_w * s, t)
        d_m_hat = torch.ops.aten.sigmoid_backward(d_w * t, s)
        d_x = d_log = None
        if ctx.needs_input_grad[0]:  # summed in the order autograd's engine sums them
            d_x = _xgrad(d_a, w)
            if absx is not None:
                d_x = d_x + _xgrad(d_l, w) / absx * torch.sgn(x)
            d_x = d_x + _xgrad(d_g, g_w)
        if ctx.needs_input_grad[1]:
            d_log = _xgrad(d_l, w)
        return d_x, d_log, d_w_hat, d_m_hat, _wgrad(x, d_g)


class NALU(NAC):
    """The paper's NALU: one NAC weight shared by the additive and multiplicative paths."""

    name = "nalu"
    takes_log_input = True
    # one autograd node (x, log_x, *node_params()) -> y with replicated weights: the
    # trainer may call its forward and backward itself (models/torch/train.py)
    node = _NALUFunction

    def node_params(self):
        return self.W_hat, self.M_hat, self.G

    def forward(self, x, log_x=None):
        if self.W_hat.dim() != 3:  # no replica axis
            return composed(self, x, log_x)
        return self.node.apply(x, log_x, *self.node_params())


def composed(unit, x, log_x=None):
    """NALU as separate autograd ops: g * (x W) + (1 - g) * exp(log(|x| + eps) W)."""
    w = nac_weight(unit)
    g = torch.sigmoid(_mm(x, unit.G))
    m = torch.exp(_mm(log_abs(x, log_x), w))
    return g * _mm(x, w) + (1 - g) * m
