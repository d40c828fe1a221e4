"""The actor-critic agent in PyTorch (loop and math: models/actor_critic.py)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.torch.base import TorchTrainer
from models.torch.units import make


def lstm_cell(W_x: np.ndarray, W_h: np.ndarray, b: np.ndarray) -> nn.LSTMCell:
    """torch's LSTMCell with the numpy weights (gates i, f, g, o as columns of W_x, W_h);
    its second bias stays zero and frozen, so there is one bias, as in Keras."""
    n_in, four_h = W_x.shape
    cell = nn.LSTMCell(n_in, four_h // 4)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.as_tensor(W_x.T, dtype=torch.float32))
        cell.weight_hh.copy_(torch.as_tensor(W_h.T, dtype=torch.float32))
        cell.bias_ih.copy_(torch.as_tensor(b, dtype=torch.float32))
        cell.bias_hh.zero_()
    cell.bias_hh.requires_grad_(False)
    return cell


def _param(a) -> nn.Parameter:
    return nn.Parameter(torch.as_tensor(np.asarray(a), dtype=torch.float32))


class Agent(nn.Module, TorchTrainer):
    """LSTM core (+ arithmetic accumulator), linear policy and value heads; Adam."""

    def __init__(self, params: dict[str, np.ndarray], unit: str | None, lr: float,
                 entropy: float, value_coef: float, max_grad_norm: float, device: str = "cpu",
                 threads: int | None = 1):
        nn.Module.__init__(self)
        TorchTrainer.__init__(self, device, threads)  # one intra-op thread: tiny matrices
        self.entropy, self.value_coef, self.max_grad_norm = entropy, value_coef, max_grad_norm
        self.lstm = lstm_cell(params["lstm_W_x"], params["lstm_W_h"], params["lstm_b"])
        self.unit = make(unit, {k.removeprefix("unit_"): v for k, v in params.items()
                                if k.startswith("unit_")}) if unit else None
        self.pi_W, self.pi_b = _param(params["pi_W"]), _param(params["pi_b"])
        self.v_W, self.v_b = _param(params["v_W"]), _param(params["v_b"])
        n_obs = params["lstm_W_x"].shape[0]  # the observation's size
        self.k = params["pi_W"].shape[0] - params["lstm_W_h"].shape[0] - n_obs
        self.to(self.device)
        self.trainable = [p for p in self.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.trainable, lr=lr)

    def zero_state(self, batch: int) -> tuple[np.ndarray, ...]:
        h = np.zeros((batch, self.lstm.hidden_size), np.float32)
        return h, h.copy(), np.zeros((batch, self.k), np.float32)

    def step(self, obs, h, c, a):
        """One step: logits, value, h, c, a (tensors)."""
        h, c = self.lstm(obs, (h, c))
        if self.unit is not None:  # the accumulator: a running sum of the unit's output
            a = a + self.unit(torch.cat([obs, torch.ones_like(obs[:, :1])], -1))
        feat = torch.cat([h, a, obs], -1)
        return feat @ self.pi_W + self.pi_b, (feat @ self.v_W + self.v_b)[:, 0], h, c, a

    @torch.no_grad()
    def act(self, obs, state):
        """(logits, value, state) as numpy, for a batch of observations."""
        with self.threading():
            logits, value, *new = self.step(self.tensor(obs), *(self.tensor(s) for s in state))
        return logits.cpu().numpy(), value.cpu().numpy(), tuple(s.cpu().numpy() for s in new)

    def update(self, obs, actions, returns, masks, state) -> dict[str, float]:
        """One A2C step on a rollout (n, B, ...) started from ``state``."""
        with self.threading():
            return self._update(self.tensor(obs), self.tensor(actions, torch.int64),
                                self.tensor(returns), self.tensor(masks),
                                [self.tensor(s) for s in state])

    def _update(self, obs, actions, returns, masks, state):
        h, c, a = state
        logits, values = [], []
        for t in range(obs.shape[0]):
            lg, v, h, c, a = self.step(obs[t], h, c, a)
            m = masks[t][:, None]
            h, c, a = h * m, c * m, a * m
            logits.append(lg)
            values.append(v)
        logp = torch.log_softmax(torch.stack(logits), -1)
        values = torch.stack(values)
        advantage = returns - values.detach()
        policy = -(logp.gather(-1, actions[..., None])[..., 0] * advantage).mean()
        value = 0.5 * ((returns - values) ** 2).mean()
        entropy = -(logp.exp() * logp).sum(-1).mean()
        loss = policy + self.value_coef * value - self.entropy * entropy
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.trainable, self.max_grad_norm)
        self.opt.step()
        if self.unit is not None:
            self.unit.project_()
        return {"loss": loss.item(), "policy": policy.item(), "value": value.item(),
                "entropy": entropy.item()}

    def params(self) -> dict[str, np.ndarray]:
        """The parameters under the numpy names of ``models.actor_critic.init_agent``."""
        f = lambda t: t.detach().cpu().numpy().astype(np.float64)  # noqa: E731
        out = {"lstm_W_x": f(self.lstm.weight_ih).T, "lstm_W_h": f(self.lstm.weight_hh).T,
               "lstm_b": f(self.lstm.bias_ih) + f(self.lstm.bias_hh)}
        if self.unit is not None:
            out.update({f"unit_{k}": v for k, v in self.unit.get_params().items()})
        out.update(pi_W=f(self.pi_W), pi_b=f(self.pi_b), v_W=f(self.v_W), v_b=f(self.v_b))
        return out
