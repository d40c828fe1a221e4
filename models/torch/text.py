"""Text to number in PyTorch: embedding -> LSTM -> output unit, R replicas at once
(the loop and the numpy specification: models/text.py)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.torch.units import make


def _param(a) -> nn.Parameter:
    return nn.Parameter(torch.tensor(np.asarray(a), dtype=torch.float32))


def lstm_step(p: nn.ParameterDict, x, h, c):
    """One LSTM step for R replicas: x (R, B, n_in), h and c (R, B, H); gates i, f, g, o.
    The one function to swap for ``models/torch/cells.make("lstm", ...)``."""
    z = torch.baddbmm(p["b"].unsqueeze(1), x, p["W_ih"]) + torch.bmm(h, p["W_hh"])
    i, f, g, o = z.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class Reader(nn.Module):
    """Reads token ids (R or 1, N, L) and gives the value after every prefix (R, N, L)."""

    def __init__(self, params: dict[str, dict[str, np.ndarray]], unit: str):
        super().__init__()
        self.E = _param(params["embedding"]["E"])
        self.lstm = nn.ParameterDict({k: _param(v) for k, v in params["lstm"].items()})
        self.out = make(unit, params["output"])

    def forward(self, tokens, lengths):
        r = self.E.shape[0]
        tokens = tokens.expand(r, *tokens.shape[-2:])
        n, length = tokens.shape[1:]
        x = torch.gather(self.E, 1, tokens.reshape(r, -1, 1).expand(-1, -1, self.E.shape[-1]))
        x = x.view(r, n, length, -1)
        hidden = self.lstm["W_hh"].shape[1]
        h = c = x.new_zeros(r, n, hidden)
        live = (torch.arange(length).view(1, 1, -1) < lengths.unsqueeze(-1)).unsqueeze(-1)
        live = live.expand(r, n, length, 1)
        outs = []
        for t in range(length):
            h_new, c_new = lstm_step(self.lstm, x[:, :, t], h, c)
            h = torch.where(live[:, :, t], h_new, h)
            c = torch.where(live[:, :, t], c_new, c)
            outs.append(h)
        hs = torch.stack(outs, dim=2).view(r, n * length, hidden)
        return self.out(hs).view(r, n, length)


class Trainer:
    """One Adam over every replica; each replica's loss is its own mean over the batch."""

    def __init__(self, params, unit: str, lr: float, device: str = "cpu",
                 threads: int | None = 1):
        self.threads = threads  # one intra-op thread: these matmuls are tiny
        self.device = torch.device(device)
        self.net = Reader(params, unit).to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)

    def _run(self, fn, *args):
        previous = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            return fn(*args)
        finally:
            torch.set_num_threads(previous)

    def _t(self, a, dtype=torch.float32):
        return torch.as_tensor(np.asarray(a), dtype=dtype, device=self.device)

    def train(self, tokens, lengths, targets, weights, lams) -> None:
        """T steps: tokens, targets, weights (T, R, B, L), lengths (T, R, B), lams (T, 1)."""
        self._run(self._train, self._t(tokens, torch.long), self._t(lengths, torch.long),
                  self._t(targets), self._t(weights), np.asarray(lams))

    def _train(self, tokens, lengths, targets, weights, lams) -> None:
        regularised = self.net.out.spec.regularised
        for t in range(tokens.shape[0]):
            pred = self.net(tokens[t], lengths[t])
            loss = (weights[t] * (pred - targets[t]) ** 2).sum(dim=(-2, -1)) / tokens.shape[2]
            if regularised and lams[t, 0] > 0:
                loss = loss + float(lams[t, 0]) * self.net.out.regulariser()
            self.opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            self.opt.step()
            self.net.out.project_()

    @torch.no_grad()
    def predict(self, tokens, lengths) -> np.ndarray:
        """(R, N, L) values after each prefix, for shared tokens (N, L)."""
        return self._run(lambda: self.net(self._t(tokens, torch.long)[None],
                                          self._t(lengths, torch.long)[None]).cpu().numpy())

    def params(self) -> dict[str, dict[str, np.ndarray]]:
        return {"embedding": {"E": self.net.E.detach().cpu().numpy().copy()},
                "lstm": {k: v.detach().cpu().numpy().copy() for k, v in self.net.lstm.items()},
                "output": self.net.out.get_params()}
