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
