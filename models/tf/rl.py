"""The actor-critic agent in TensorFlow / Keras 3, R replicas as one program (loop and math:
models/actor_critic.py)."""
from __future__ import annotations

import numpy as np

from models.tf.base import adam, assign_state, device_name, variables_state
from models.tf.cells import LSTM
from models.tf.units import _bias, keras, make, tf


def _variable(a, name: str) -> keras.Variable:
    return keras.Variable(np.asarray(a, np.float32), name=name, dtype="float32")


class Agent:
    """R replicas of the agent, one per seed (every variable has a leading replica axis):
    the replica-axis LSTM of `models.tf.cells` (+ the arithmetic accumulator), linear
    policy and value heads. One Adam over all replicas: the loss is summed over replicas
    and every op is per replica, so each replica gets its own gradient and Adam step.
    ``act`` and ``update`` are compiled tf.functions (graph mode, not XLA)."""

    def __init__(self, params: dict[str, np.ndarray], unit: str | None, lr: float,
                 entropy: float, value_coef: float, max_grad_norm: float, device: str = "cpu"):
        self.device = device_name(device)
        self.entropy, self.value_coef, self.max_grad_norm = entropy, value_coef, max_grad_norm
        self.replicas = len(params["lstm_W_x"])
        # TensorFlow's CPU kernels treat a replica axis of one apart: a batched matmul of
        # one matrix is a tensor contraction, of several (small ones) an Eigen product
        # each, and reductions drop the axis. A lone replica runs beside a copy of itself,
        # discarded, so that its numbers are those it gets in any program.
        self._copies = 2 if self.replicas == 1 else 1
        params = {k: np.concatenate([v] * self._copies) for k, v in params.items()}
        with tf.device(self.device):
            self.lstm = LSTM({"W": params["lstm_W_x"], "U": params["lstm_W_h"],
                              "b": params["lstm_b"]})
            self.unit = make(unit, {k.removeprefix("unit_"): v for k, v in params.items()
                                    if k.startswith("unit_")}) if unit else None
            self.heads = {k: _variable(params[k], k) for k in ("pi_W", "pi_b", "v_W", "v_b")}
            self.variables = [*self.lstm.trainable_variables,
                              *(self.unit.trainable_variables if self.unit else []),
                              *self.heads.values()]
            self.opt = adam(lr, self.variables)
        n_obs = params["lstm_W_x"].shape[1]
        self.hidden = self.lstm.hidden
        self.k = params["pi_W"].shape[1] - self.hidden - n_obs  # the accumulator's size
        row = lambda n: tf.TensorSpec([len(params["pi_W"]), None, n], tf.float32)  # noqa: E731
        self._act = tf.function(self._act_graph, autograph=False, input_signature=[
            row(n_obs), row(self.hidden), row(self.hidden), row(self.k)])
        self._update = tf.function(self._update_graph, autograph=False)

    def zero_state(self, batch: int) -> tuple[np.ndarray, ...]:
        """(h, c, a) at t = 0, each (R, batch, size)."""
        h = np.zeros((self.replicas, batch, self.hidden), np.float32)
        return h, h.copy(), np.zeros((self.replicas, batch, self.k), np.float32)

    def step(self, obs, h, c, a):
        """One step of every replica on obs (R, B, n_obs): logits, value, h, c, a."""
        h, (_, c) = self.lstm(obs, (h, c))
        if self.unit is not None:  # the accumulator: a running sum of the unit's output
            a = a + self.unit(tf.concat([obs, tf.ones_like(obs[..., :1])], -1))
        feat = tf.concat([h, a, obs], -1)
        hd = self.heads  # both heads in one product, as in torch
        out = (tf.matmul(feat, tf.concat([hd["pi_W"], hd["v_W"]], -1))
               + _bias(tf.concat([hd["pi_b"], hd["v_b"]], -1)))
        return out[..., :-1], out[..., -1], h, c, a

    def _act_graph(self, obs, h, c, a):
        return self.step(obs, h, c, a)

    def act(self, obs, state):
        """(logits (R, B, 5), value (R, B), state) as numpy, for observations (R, B, n_obs)."""
        with tf.device(self.device):
            out = self._act(*(self._in(a) for a in (obs, *state)))
        logits, value, *new = (t.numpy()[:self.replicas] for t in out)
        return logits, value, tuple(new)

    def _in(self, a, dtype=np.float32) -> np.ndarray:
        """An (R, ...) input with the lone replica's copy where there is one."""
        a = np.asarray(a, dtype)
        return np.concatenate([a] * self._copies) if self._copies > 1 else a

    def _update_graph(self, obs, actions, returns, masks, h, c, a, value_coef, entropy_coef):
        with tf.GradientTape() as tape:
            logits, values = [], []
            for t in range(obs.shape[1]):  # the rollout length is fixed: unrolled once
                lg, v, h, c, a = self.step(obs[:, t], h, c, a)
                m = masks[:, t, :, None]
                h, c, a = h * m, c * m, a * m
                logits.append(lg)
                values.append(v)
            logp = tf.nn.log_softmax(tf.stack(logits, 1), -1)
            values = tf.stack(values, 1)
            advantage = returns - tf.stop_gradient(values)
            chosen = tf.gather(logp, actions, axis=-1, batch_dims=3)
            steps = [1, 2]
            policy = -tf.reduce_mean(chosen * advantage, steps)
            value = 0.5 * tf.reduce_mean(tf.square(returns - values), steps)
            entropy = -tf.reduce_mean(tf.reduce_sum(tf.exp(logp) * logp, -1), steps)
            loss = policy + value_coef * value - entropy_coef * entropy
            total = tf.reduce_sum(loss)
        grads = tape.gradient(total, [v.value for v in self.variables])
        self.opt.apply_gradients(zip(self._clip(grads), self.variables))
        if self.unit is not None:
            self.unit.project_()
        return tf.stack([loss, policy, value, entropy])

    def _clip(self, grads):
        """tf.clip_by_global_norm per replica: each replica's gradients scaled to a global
        norm of at most ``max_grad_norm`` over its slice of every variable."""
        squares = tf.add_n([tf.reduce_sum(tf.square(g), list(range(1, len(g.shape))))
                            for g in grads])
        norm = tf.sqrt(squares)
        scale = self.max_grad_norm * tf.minimum(1.0 / norm, 1.0 / self.max_grad_norm)
        return [g * tf.reshape(scale, [-1] + [1] * (len(g.shape) - 1)) for g in grads]

    def update(self, obs, actions, returns, masks, state) -> dict[str, np.ndarray]:
        """One A2C step of every replica on its rollout (R, n, B, ...) started from
        ``state``; the losses per replica, (R,) each."""
        with tf.device(self.device):
            # the coefficients as inputs, not graph constants: with constants, the graph
            # optimiser rewrites the gradient of c x mean (1 / (n B) not a power of two) so
            # that a replica rounds differently with R (measured at batch 1000 and above)
            out = self._update(self._in(obs), self._in(actions, np.int32), self._in(returns),
                               self._in(masks), *(self._in(s) for s in state),
                               np.float32(self.value_coef), np.float32(self.entropy))
        return dict(zip(("loss", "policy", "value", "entropy"), out.numpy()[:, :self.replicas]))

    def params(self) -> dict[str, np.ndarray]:
        """The parameters (R, ...) under the numpy names of ``models.actor_critic.init_agent``."""
        f = lambda v: np.asarray(v, np.float64)[:self.replicas]  # noqa: E731
        out = {"lstm_W_x": f(self.lstm.W), "lstm_W_h": f(self.lstm.U), "lstm_b": f(self.lstm.b)}
        if self.unit is not None:
            out.update({f"unit_{k}": f(v) for k, v in self.unit.get_params().items()})
        out.update({k: f(v) for k, v in self.heads.items()})
        return out

    def _all_variables(self) -> list:
        return [*self.lstm.variables, *(self.unit.variables if self.unit else []),
                *self.heads.values()]

    def get_state(self) -> dict:
        """What a checkpoint keeps (`models.checkpoint`): every variable and Adam's."""
        return variables_state(self._all_variables(), self.opt)

    def set_state(self, state: dict) -> None:
        assign_state(self._all_variables(), self.opt, state, self.device)
