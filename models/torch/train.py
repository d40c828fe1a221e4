"""Supervised training of R replicas at once in PyTorch (adapter: models/supervised.py,
loop: models/engine.py)."""
from __future__ import annotations

import numpy as np
import torch

from models.torch.base import TorchTrainer
from models.torch.nets import Stack
from models.torch.units import EPS


def _memory_order(t: torch.Tensor) -> list[int]:
    """The dims of ``t`` from the largest stride to the smallest: permuted so, a weight
    stored transposed (`models.torch.units.base._stored`) is a contiguous view."""
    return sorted(range(t.dim()), key=lambda d: -t.stride(d))


def _same_layout(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same shape and the same strides where they matter (a dim of size 1 has none)."""
    return a.shape == b.shape and all(n == 1 or sa == sb for n, sa, sb
                                      in zip(a.shape, a.stride(), b.stride()))


class ReplicaAdam:
    """torch.optim.Adam(fused=True), bit for bit (its fused kernel, same state), with
    every tensor passed as a contiguous view in memory order. Adam is element-wise, so the
    view changes nothing but speed: the fused kernel otherwise copies each transposed
    weight, gradient and moment to a contiguous one and back (3 of nalu's 6 tensors).
    The views of weights and moments are made once, and the kernel is called as
    `torch.optim.adam`'s fused path calls it, without `Optimizer.step`'s bookkeeping.
    ``state[p]`` holds step, exp_avg and exp_avg_sq as torch.optim.Adam's does; while every
    parameter gets a gradient every step, their step counts are one tensor, counted by one
    add instead of one per tensor."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self._step = torch.zeros((), dtype=torch.float32,
                                 device=self.params[0].device if self.params else None)
        self.state = {p: {"step": self._step,
                          "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                          "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
                      for p in self.params}
        self._order = {p: _memory_order(p) for p in self.params}
        self._views = {p: [t.detach().permute(*self._order[p])
                           for t in (p, self.state[p]["exp_avg"], self.state[p]["exp_avg_sq"])]
                       for p in self.params}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        todo = [p for p in self.params if p.grad is not None]
        if not todo:
            return
        weights, grads, avgs, avg_sqs = [], [], [], []
        for p in todo:
            if not _same_layout(p.grad, p):
                # autograd gives a gradient its weight's layout; one set by hand may not, and
                # torch 2.13's CPU fused kernel reads both as flat memory (measured: wrong
                # elements), so it is copied into the weight's layout first
                p.grad = torch.empty_like(p, memory_format=torch.preserve_format).copy_(p.grad)
            weight, avg, avg_sq = self._views[p]
            weights.append(weight)
            grads.append(p.grad.permute(*self._order[p]))
            avgs.append(avg)
            avg_sqs.append(avg_sq)
        steps = [self.state[p]["step"] for p in todo]
        if self._step is not None and len(todo) == len(self.params):
            self._step.add_(1)
        else:  # a parameter without a gradient keeps its count: each gets its own from now on
            if self._step is not None:
                for p in self.params:
                    self.state[p]["step"] = self._step.clone()
                self._step = None
                steps = [self.state[p]["step"] for p in todo]
            torch._foreach_add_(steps, 1)
        torch._fused_adam_(weights, grads, avgs, avg_sqs, [], steps, amsgrad=False,
                           lr=self.lr, beta1=self.betas[0], beta2=self.betas[1],
                           weight_decay=0.0, eps=self.eps, maximize=False,
                           grad_scale=None, found_inf=None)


def mse_grad_scale(pred: torch.Tensor) -> float:
    """d/dpred of the summed per-replica MSE is (pred - y) times this: 2 * float32(1/N).
    Autograd rounds mean's 1/N to float32 and multiplies the grad by 2 (pred - y), which
    is exact, so one product gives its bits (tested) without the loss's forward and
    backward nodes: 7 ops fewer per step."""
    n = pred.shape[-2] * pred.shape[-1]
    return float(np.float32(2) * (np.float32(1) / np.float32(n)))


class _Ctx:
    """The ctx an autograd.Function's forward and backward get, for calling them by hand."""

    def __init__(self, needs_input_grad: tuple[bool, ...]):
        self.needs_input_grad = needs_input_grad

    def save_for_backward(self, *tensors) -> None:
        self.saved_tensors = tensors


class Trainer(TorchTrainer):
    """One Adam over every replica; the loss is summed over replicas so each
    replica's gradient is its own. ``loss_scale`` multiplies each replica's MSE term (not
    the regularisers): N * n_out / 2 makes it ``tf.nn.l2_loss``, half the sum of squared
    errors, whose gradient with respect to the prediction is exactly pred - y. Adam's
    epsilon makes a scaled loss train differently from the MSE."""

    def __init__(self, layers: list[tuple[str, dict[str, np.ndarray]]], lr: float,
                 device: str = "cpu", threads: int | None = 1, clip_grad: float | None = None,
                 loss_scale: float = 1.0):
        super().__init__(device, threads)
        self.clip_grad = clip_grad  # gradients clipped element-wise to +-clip_grad
        self.loss_scale = float(loss_scale)
        self.net = Stack(layers).to(self.device)
        self.layers = self.net.units
        self.opt = ReplicaAdam(self.net.parameters(), lr=lr)
        self._log_buffers: dict[tuple, list[torch.Tensor]] = {}
        self._prepared = 0
        # every unit one node with replicated weights (nalu): steps can skip autograd
        self._by_hand = all(u.node is not None and all(p.dim() == 3 for p in u.node_params())
                            for u in self.net.units)

    def grad_scale(self, pred: torch.Tensor) -> float:
        """d/dpred of the summed per-replica loss is (pred - y) times this: `mse_grad_scale`
        at ``loss_scale`` 1, else 2 * loss_scale / n rounded once (1.0 for the half sum)."""
        if self.loss_scale == 1.0:
            return mse_grad_scale(pred)
        return float(np.float32(2.0 * self.loss_scale / (pred.shape[-2] * pred.shape[-1])))

    def prepare(self, xs: np.ndarray, ys: np.ndarray) -> dict:
        """A chunk as tensors, plus log(|x| + eps) when the first unit takes it: called on
        the data thread (models/supervised.py), so the log overlaps training. A chunk whose
        steps are one set (numpy stride 0 along the steps: `models.explainer.FixedBatches`)
        is made and logged once and expanded, its replicas' own sets (R, B, n) stored as
        (R, n, B) memory, the layout of the units' outputs (`models.torch.units.base._mm`):
        the first layer's batched GEMMs, forward and weight gradient, run faster on it (A/B
        in docs/performance.md). The forward rounds as on (R, B, n) memory; the weight
        gradient is another MKL kernel and rounds its own way, the same for a replica alone
        as in any program (tested)."""
        steps = xs.shape[0]
        fixed = isinstance(xs, np.ndarray) and xs.strides[0] == 0 and ys.strides[0] == 0
        if fixed:
            xs, ys = xs[:1].copy(), ys[:1].copy()
        xs, ys = self.tensor(xs), self.tensor(ys)
        if fixed and xs.dim() == 4:  # (1, R, B, n): (R, n, B) memory, viewed as (R, B, n)
            xs = xs.transpose(-1, -2).contiguous().transpose(-1, -2)
        log_xs = None
        if self.net.takes_log_input:
            # in place, into one of two alternating buffers (a chunk trains while the next
            # is prepared, as tasks.base.ReplicaBatches) in the layout of xs: the same values
            # as log(|x| + eps), without three fresh chunk-sized tensors
            pair = self._log_buffers.setdefault((tuple(xs.shape), xs.stride()), [])
            while len(pair) < 2:
                pair.append(torch.empty_like(xs))
            log_xs = torch.abs(xs, out=pair[self._prepared % 2]).add_(EPS).log_()
            self._prepared += 1
        if fixed:
            xs, ys = xs.expand(steps, *xs.shape[1:]), ys.expand(steps, *ys.shape[1:])
            log_xs = None if log_xs is None else log_xs.expand(steps, *log_xs.shape[1:])
        return {"xs": xs, "ys": ys, "log_xs": log_xs}

    def train(self, xs, ys, lams: np.ndarray, log_xs=None) -> None:
        with self.threading():
            self._train(self.tensor(xs), self.tensor(ys), lams, log_xs)

    def _train(self, xs, ys, lams, log_xs) -> None:
        regularised = [j for j, u in enumerate(self.net.units) if u.spec.regularised]
        per_replica = self.tensor(lams) if lams.ndim == 3 else None  # (T, R, layers)
        for t in range(xs.shape[0]):
            x, log_x, y = xs[t], None if log_xs is None else log_xs[t], ys[t]
            active = [j for j in regularised if (lams[t, ..., j] > 0).any()]
            self.opt.zero_grad(set_to_none=True)
            if active:
                loss = ((self.net(x, log_x) - y) ** 2).mean(dim=(-2, -1))
                if self.loss_scale != 1.0:
                    loss = loss * self.loss_scale
                for j in active:
                    lam = float(lams[t, j]) if per_replica is None else per_replica[t, :, j]
                    loss = loss + lam * self.net.units[j].regulariser()
                loss.sum().backward()
            elif self._by_hand:
                self._step_by_hand(x, log_x, y)
            else:
                pred = self.net(x, log_x)
                pred.backward((pred.detach() - y) * self.grad_scale(pred))
            if self.clip_grad is not None:
                torch.nn.utils.clip_grad_value_(self.net.parameters(), self.clip_grad)
            self.opt.step()
            self.net.project_()

    @torch.no_grad()
    def _step_by_hand(self, x, log_x, y) -> None:
        """One step's gradients from the units' nodes, forward and backward called in the
        order autograd's engine calls them, so every bit agrees (tested), without the
        engine's overhead (docs/performance.md)."""
        ctxs = []
        for j, unit in enumerate(self.net.units):
            params = unit.node_params()
            ctx = _Ctx((j > 0, False) + (True,) * len(params))  # x, log_x, the weights
            x = unit.node.forward(ctx, x, log_x if j == 0 else None, *params)
            ctxs.append(ctx)
        grad = (x - y) * self.grad_scale(x)
        for unit, ctx in zip(reversed(self.net.units), reversed(ctxs)):
            grad, _, *grads = unit.node.backward(ctx, grad)
            for p, g in zip(unit.node_params(), grads, strict=True):
                p.grad = g
