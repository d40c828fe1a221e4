"""The actor-critic agent in PyTorch, R replicas as one program (loop and math:
models/actor_critic.py)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.torch.base import TorchTrainer
from models.torch.cells import LSTM, _bias, _mm
from models.torch.units import make


def _param(a) -> nn.Parameter:
    return nn.Parameter(torch.as_tensor(np.asarray(a), dtype=torch.float32))


class Agent(nn.Module, TorchTrainer):
    """R replicas of the agent, one per seed (every parameter has a leading replica axis):
    the replica-axis LSTM of `models.torch.cells` (+ the arithmetic accumulator), linear
    policy and value heads. One Adam over all replicas: the loss is summed over replicas
    and every op is per replica, so each replica gets its own gradient and Adam step."""

    def __init__(self, params: dict[str, np.ndarray], unit: str | None, lr: float,
                 entropy: float, value_coef: float, max_grad_norm: float, device: str = "cpu",
                 threads: int | None = 1):
        nn.Module.__init__(self)
        TorchTrainer.__init__(self, device, threads)  # one intra-op thread: tiny matrices
        self.entropy, self.value_coef, self.max_grad_norm = entropy, value_coef, max_grad_norm
        self.lstm = LSTM({"W": params["lstm_W_x"], "U": params["lstm_W_h"],
                          "b": params["lstm_b"]})
        self.unit = make(unit, {k.removeprefix("unit_"): v for k, v in params.items()
                                if k.startswith("unit_")}) if unit else None
        self.pi_W, self.pi_b = _param(params["pi_W"]), _param(params["pi_b"])
        self.v_W, self.v_b = _param(params["v_W"]), _param(params["v_b"])
        self.replicas, n_obs, _ = params["lstm_W_x"].shape
        self.k = params["pi_W"].shape[1] - self.lstm.hidden - n_obs  # the accumulator's size
        self.to(self.device)
        self.trainable = list(self.parameters())
        self.opt = torch.optim.Adam(self.trainable, lr=lr)

    def zero_state(self, batch: int) -> tuple[np.ndarray, ...]:
        """(h, c, a) at t = 0, each (R, batch, size)."""
        h = np.zeros((self.replicas, batch, self.lstm.hidden), np.float32)
        return h, h.copy(), np.zeros((self.replicas, batch, self.k), np.float32)

    def step(self, obs, h, c, a):
        """One step of every replica on obs (R, B, n_obs): logits, value, h, c, a."""
        h, (_, c) = self.lstm(obs, (h, c))
        if self.unit is not None:  # the accumulator: a running sum of the unit's output
            a = a + self.unit(torch.cat([obs, torch.ones_like(obs[..., :1])], -1))
        feat = torch.cat([h, a, obs], -1)
        # both heads in one product: a batched GEMM with one output column rounds each
        # replica differently with the number of replicas (MKL), one with six does not
        out = (_mm(feat, torch.cat([self.pi_W, self.v_W], -1))
               + _bias(torch.cat([self.pi_b, self.v_b], -1)))
        return out[..., :-1], out[..., -1], h, c, a

    @torch.no_grad()
    def act(self, obs, state):
        """(logits (R, B, 5), value (R, B), state) as numpy, for observations (R, B, n_obs)."""
        with self.threading():
            logits, value, *new = self.step(self.tensor(obs), *(self.tensor(s) for s in state))
        return logits.cpu().numpy(), value.cpu().numpy(), tuple(s.cpu().numpy() for s in new)

    def update(self, obs, actions, returns, masks, state) -> dict[str, np.ndarray]:
        """One A2C step of every replica on its rollout (R, n, B, ...) started from
        ``state``; the losses per replica, (R,) each."""
        with self.threading():  # contiguous: a replica's means reduce one block, as alone
            return self._update(self.tensor(obs).contiguous(),
                                self.tensor(actions, torch.int64).contiguous(),
                                self.tensor(returns).contiguous(),
                                self.tensor(masks).contiguous(), [self.tensor(s) for s in state])

    def _update(self, obs, actions, returns, masks, state):
        h, c, a = state
        logits, values = [], []
        for t in range(obs.shape[1]):
            lg, v, h, c, a = self.step(obs[:, t], h, c, a)
            m = masks[:, t, :, None]
            h, c, a = h * m, c * m, a * m
            logits.append(lg)
            values.append(v)
        # replica-major (R, n, B): each replica's means reduce one contiguous block
        logp = torch.log_softmax(torch.stack(logits, 1), -1)
        values = torch.stack(values, 1)
        steps = (1, 2)
        advantage = returns - values.detach()
        chosen = logp.gather(-1, actions[..., None])[..., 0]
        policy = -(chosen * advantage).mean(steps)
        value = 0.5 * ((returns - values) ** 2).mean(steps)
        entropy = -(logp.exp() * logp).sum(-1).mean(steps)
        loss = policy + self.value_coef * value - self.entropy * entropy
        self.opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        self._clip()
        self.opt.step()
        if self.unit is not None:
            self.unit.project_()
        out = torch.stack([loss, policy, value, entropy]).detach().cpu().numpy()
        return dict(zip(("loss", "policy", "value", "entropy"), out))

    @torch.no_grad()
    def _clip(self) -> None:
        """torch.nn.utils.clip_grad_norm_ per replica: each replica's gradients scaled to a
        global norm of at most ``max_grad_norm`` over its slice of every parameter."""
        grads = [p.grad for p in self.trainable]
        norms = torch.stack([torch.linalg.vector_norm(g, dim=tuple(range(1, g.dim())))
                             for g in grads], 1)
        coef = torch.clamp(self.max_grad_norm / (torch.linalg.vector_norm(norms, dim=1) + 1e-6),
                           max=1.0)
        for g in grads:
            g.mul_(coef.view(-1, *[1] * (g.dim() - 1)))

    def params(self) -> dict[str, np.ndarray]:
        """The parameters (R, ...) under the numpy names of ``models.actor_critic.init_agent``."""
        f = lambda t: t.detach().cpu().numpy().astype(np.float64)  # noqa: E731
        out = {"lstm_W_x": f(self.lstm.W), "lstm_W_h": f(self.lstm.U), "lstm_b": f(self.lstm.b)}
        if self.unit is not None:
            out.update({f"unit_{k}": v.astype(np.float64)
                        for k, v in self.unit.get_params().items()})
        out.update(pi_W=f(self.pi_W), pi_b=f(self.pi_b), v_W=f(self.v_W), v_b=f(self.v_b))
        return out
