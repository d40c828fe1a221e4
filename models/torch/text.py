"""Text to number in PyTorch: embedding -> LSTM -> output unit, R replicas at once
(the loop and the numpy specification: models/text.py)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.torch import cells
from models.torch.base import TorchTrainer
from models.torch.units import make


def _param(a) -> nn.Parameter:
    return nn.Parameter(torch.tensor(np.asarray(a), dtype=torch.float32))


class Reader(nn.Module):
    """Reads token ids (R or 1, N, L) and gives the value after every prefix (R, N, L), or
    with ``readout="last"`` the final state's only (R, N, 1)."""

    def __init__(self, params: dict[str, dict[str, np.ndarray]], unit: str,
                 readout: str = "every"):
        super().__init__()
        self.readout = readout
        self.E = _param(params["embedding"]["E"])
        self.lstm = cells.make("lstm", params["lstm"])
        self.out = make(unit, params["output"])

    def forward(self, tokens, lengths):
        r = self.E.shape[0]
        tokens = tokens.expand(r, *tokens.shape[-2:])
        n, length = tokens.shape[1:]
        x = torch.gather(self.E, 1, tokens.reshape(r, -1, 1).expand(-1, -1, self.E.shape[-1]))
        x = x.view(r, n, length, -1)
        state = self.lstm.zero_state(n, r)
        outs = []
        for t in range(length):
            h, state = self.lstm(x[:, :, t], state)
            outs.append(h)
        hidden = h.shape[-1]
        # Past a sequence's end the state is held: positions >= length read the last token's
        # state (one gather instead of masking every step; right padding never reaches back)
        last = (lengths.expand(r, n) - 1).view(r, n, 1)
        held = last if self.readout == "last" else torch.minimum(
            torch.arange(length, device=tokens.device).view(1, 1, -1), last)
        hs = torch.gather(torch.stack(outs, dim=2), 2,
                          held.unsqueeze(-1).expand(-1, -1, -1, hidden))
        k = held.shape[-1]
        return self.out(hs.reshape(r, n * k, hidden)).view(r, n, k)


class Trainer(TorchTrainer):
    """One Adam over every replica; each replica's loss is its own mean over the batch.
    One intra-op thread (`TorchTrainer`): these matmuls are tiny."""

    def __init__(self, params, unit: str, lr: float, device: str = "cpu",
                 threads: int | None = 1, readout: str = "every"):
        super().__init__(device, threads)
        self.net = Reader(params, unit, readout).to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, foreach=True)

    def train(self, tokens, lengths, targets, weights, lams) -> None:
        """T steps: tokens (T, R, B, L), targets and weights (T, R, B, K) (K: values read,
        `Reader`), lengths (T, R, B), lams (T, 1)."""
        with self.threading():
            self._train(self.tensor(tokens, torch.long), self.tensor(lengths, torch.long),
                        self.tensor(targets), self.tensor(weights), np.asarray(lams))

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
        """(R, N, K) values read (`Reader`), for shared tokens (N, L)."""
        with self.threading():
            return self.net(self.tensor(tokens, torch.long)[None],
                            self.tensor(lengths, torch.long)[None]).cpu().numpy()

    def params(self) -> dict[str, dict[str, np.ndarray]]:
        return {"embedding": {"E": self.net.E.detach().cpu().numpy().copy()},
                "lstm": self.net.lstm.get_params(),
                "output": self.net.out.get_params()}
