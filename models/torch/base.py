"""What every PyTorch trainer shares: its device, its thread count while it works, tensors
from numpy, and its parameters out and in (`models.engine.Trainer` is the protocol)."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch


class TorchTrainer:
    """Base of the torch trainers. A subclass sets ``self.layers`` (the modules whose
    parameters `params` and `reinit` handle, each with ``get_params``) and ``self.opt``.

    ``threads``: intra-op threads while training (one by default: the next chunk of data
    is drawn on the other core, and two torch threads on top of it oversubscribe a 2-core
    machine); restored afterwards, so nothing else in the process is affected."""

    def __init__(self, device: str = "cpu", threads: int | None = 1):
        self.device = torch.device(device)
        self.threads = threads

    @contextmanager
    def threading(self):
        """Run the block with this trainer's intra-op thread count."""
        previous = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def tensor(self, a, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``a`` (numpy, a list or a tensor) as a tensor of ``dtype`` on the device."""
        if isinstance(a, torch.Tensor):
            return a.to(device=self.device, dtype=dtype)
        return torch.as_tensor(np.asarray(a), dtype=dtype, device=self.device)

    @torch.no_grad()
    def errors(self, x: np.ndarray, y: np.ndarray, chunk: int = 2000,
               own: bool = False) -> np.ndarray:
        """Per-replica MSE of ``self.net`` on a shared input set x (N, ...), or with
        ``own`` on each replica's own set x (R, N, ...), against targets y (R, N, n_out),
        summed in float64 ``chunk`` inputs at a time."""
        n = x.shape[1 if own else 0]
        total = None
        for i in range(0, n, chunk):
            part = x[:, i:i + chunk] if own else x[i:i + chunk]
            pred = self.net(self.tensor(part)).double()
            err = ((pred - torch.as_tensor(y[:, i:i + chunk], device=self.device,
                                           dtype=torch.float64)) ** 2).sum(dim=(-2, -1))
            total = err if total is None else total + err
        return (total / (n * y.shape[-1])).cpu().numpy()

    def params(self) -> list[dict[str, np.ndarray]]:
        return [layer.get_params() for layer in self.layers]

    def _stateful(self) -> torch.nn.Module:
        """The module whose tensors a checkpoint keeps: ``self.net``, or the trainer itself
        where it is the module (the grid world's agent)."""
        return self.net if hasattr(self, "net") else self

    def get_state(self) -> dict:
        """What a checkpoint keeps (`models.checkpoint`): every tensor of the network as
        stored and each one's Adam state (step, moments) as numpy copies, bit for bit."""
        net = self._stateful()
        tensors = list(net.parameters()) + list(net.buffers())
        opt = [{k: v.detach().cpu().numpy().copy() for k, v in self.opt.state.get(p, {}).items()
                if torch.is_tensor(v)} for p in net.parameters()]
        return {"tensors": [t.detach().cpu().numpy().copy() for t in tensors], "adam": opt}

    @torch.no_grad()
    def set_state(self, state: dict) -> None:
        """`get_state`'s arrays back in place (views on the tensors stay valid); Adam's state
        is created where the optimiser has none yet (torch.optim.Adam makes it lazily).
        Every shape is checked first: a ValueError changes nothing."""
        net = self._stateful()
        params = list(net.parameters())
        tensors = params + list(net.buffers())
        expected = [(tuple(t.shape), str(t.dtype).removeprefix("torch.")) for t in tensors]
        got = [(tuple(np.shape(v)), str(np.asarray(v).dtype)) for v in state["tensors"]]
        moments = [(tuple(p.shape), tuple(np.shape(v))) for p, saved in
                   zip(params, state["adam"], strict=True) for k, v in saved.items()
                   if k != "step"]
        if got != expected or any(a != b for a, b in moments):
            raise ValueError("its weights or Adam moments have other shapes or types")
        for t, value in zip(tensors, state["tensors"], strict=True):
            t.copy_(torch.as_tensor(value))
        for p, saved in zip(params, state["adam"], strict=True):
            current = self.opt.state.get(p)
            if current:
                for k, value in saved.items():
                    current[k].copy_(torch.as_tensor(value))
            elif saved:  # its step count on the CPU, as torch.optim.Adam keeps it
                self.opt.state[p] = {k: torch.as_tensor(value).clone().to(
                    "cpu" if k == "step" else p.device) for k, value in saved.items()}

    @torch.no_grad()
    def reinit(self, mask: np.ndarray, layers: list[dict[str, np.ndarray] | None],
               keep_moments: bool = False) -> None:
        """Give the replicas in ``mask`` (R,) the parameters ``layers`` (per layer, arrays
        with one row per selected replica; None keeps the layer) and zero their Adam
        moments unless ``keep_moments`` ([Primer]'s loop keeps them); other replicas are
        untouched. Adam's step count is one per tensor, shared by all replicas, so it goes
        on (`tasks.base.Reinit`)."""
        idx = torch.as_tensor(np.flatnonzero(mask), device=self.device)
        for layer, new in zip(self.layers, layers):
            for k, value in (new or {}).items():
                p = getattr(layer, k)
                p[idx] = self.tensor(value)
                for moment in () if keep_moments else ("exp_avg", "exp_avg_sq"):
                    if moment in self.opt.state.get(p, {}):
                        self.opt.state[p][moment][idx] = 0.0
