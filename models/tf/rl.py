"""The actor-critic agent in TensorFlow / Keras 3 (loop and math: models/actor_critic.py)."""
from __future__ import annotations

import numpy as np

from models.tf.base import adam, assign_state, device_name, variables_state
from models.tf.units import keras, make, tf


def lstm_cell(W_x: np.ndarray, W_h: np.ndarray, b: np.ndarray) -> keras.layers.LSTMCell:
    """Keras's LSTMCell with the numpy weights (gates i, f, c, o: torch's order)."""
    n_in, four_h = W_x.shape
    cell = keras.layers.LSTMCell(four_h // 4, dtype="float32")
    cell.build((None, n_in))
    cell.kernel.assign(np.asarray(W_x, np.float32))
    cell.recurrent_kernel.assign(np.asarray(W_h, np.float32))
    cell.bias.assign(np.asarray(b, np.float32))
    return cell


def _variable(a, name: str) -> keras.Variable:
    return keras.Variable(np.asarray(a, np.float32), name=name, dtype="float32")


class Agent:
    """LSTM core (+ arithmetic accumulator), linear policy and value heads; Adam.
    ``act`` and ``update`` are compiled tf.functions (graph mode, not XLA)."""

    def __init__(self, params: dict[str, np.ndarray], unit: str | None, lr: float,
                 entropy: float, value_coef: float, max_grad_norm: float, device: str = "cpu"):
        self.device = device_name(device)
        self.entropy, self.value_coef, self.max_grad_norm = entropy, value_coef, max_grad_norm
        with tf.device(self.device):
            self.lstm = lstm_cell(params["lstm_W_x"], params["lstm_W_h"], params["lstm_b"])
            self.unit = make(unit, {k.removeprefix("unit_"): v for k, v in params.items()
                                    if k.startswith("unit_")}) if unit else None
            self.heads = {k: _variable(params[k], k) for k in ("pi_W", "pi_b", "v_W", "v_b")}
            self.variables = [*self.lstm.trainable_variables,
                              *(self.unit.trainable_variables if self.unit else []),
                              *self.heads.values()]
            self.opt = adam(lr, self.variables)
        self.hidden = params["lstm_W_h"].shape[0]
        n_obs = params["lstm_W_x"].shape[0]  # the observation's size
        self.k = params["pi_W"].shape[0] - self.hidden - n_obs
        row = lambda n: tf.TensorSpec([None, n], tf.float32)  # noqa: E731
        self._act = tf.function(self._act_graph, autograph=False, input_signature=[
            row(n_obs), row(self.hidden), row(self.hidden), row(self.k)])
        self._update = tf.function(self._update_graph, autograph=False)

    def zero_state(self, batch: int) -> tuple[np.ndarray, ...]:
        h = np.zeros((batch, self.hidden), np.float32)
        return h, h.copy(), np.zeros((batch, self.k), np.float32)

    def step(self, obs, h, c, a):
        """One step: logits, value, h, c, a (tensors)."""
        h, (_, c) = self.lstm(obs, [h, c])
        if self.unit is not None:  # the accumulator: a running sum of the unit's output
            a = a + self.unit(tf.concat([obs, tf.ones_like(obs[:, :1])], -1))
        feat = tf.concat([h, a, obs], -1)
        hd = self.heads
        return (tf.matmul(feat, hd["pi_W"]) + hd["pi_b"],
                (tf.matmul(feat, hd["v_W"]) + hd["v_b"])[:, 0], h, c, a)

    def _act_graph(self, obs, h, c, a):
        return self.step(obs, h, c, a)

    def act(self, obs, state):
        """(logits, value, state) as numpy, for a batch of observations."""
        with tf.device(self.device):
            logits, value, *new = self._act(np.asarray(obs, np.float32),
                                            *(np.asarray(s, np.float32) for s in state))
        return logits.numpy(), value.numpy(), tuple(s.numpy() for s in new)

    def _update_graph(self, obs, actions, returns, masks, h, c, a):
        with tf.GradientTape() as tape:
            logits, values = [], []
            for t in range(obs.shape[0]):  # the rollout length is fixed: unrolled once
                lg, v, h, c, a = self.step(obs[t], h, c, a)
                m = masks[t][:, None]
                h, c, a = h * m, c * m, a * m
                logits.append(lg)
                values.append(v)
            logp = tf.nn.log_softmax(tf.stack(logits), -1)
            values = tf.stack(values)
            advantage = returns - tf.stop_gradient(values)
            chosen = tf.gather(logp, actions, axis=-1, batch_dims=2)
            policy = -tf.reduce_mean(chosen * advantage)
            value = 0.5 * tf.reduce_mean(tf.square(returns - values))
            entropy = -tf.reduce_mean(tf.reduce_sum(tf.exp(logp) * logp, -1))
            loss = policy + self.value_coef * value - self.entropy * entropy
        grads = tape.gradient(loss, [v.value for v in self.variables])
        grads, _ = tf.clip_by_global_norm(grads, self.max_grad_norm)
        self.opt.apply_gradients(zip(grads, self.variables))
        if self.unit is not None:
            self.unit.project_()
        return {"loss": loss, "policy": policy, "value": value, "entropy": entropy}

    def update(self, obs, actions, returns, masks, state) -> dict[str, float]:
        """One A2C step on a rollout (n, B, ...) started from ``state``."""
        with tf.device(self.device):
            out = self._update(np.asarray(obs, np.float32), np.asarray(actions, np.int32),
                               np.asarray(returns, np.float32), np.asarray(masks, np.float32),
                               *(np.asarray(s, np.float32) for s in state))
        return {k: float(v) for k, v in out.items()}

    def params(self) -> dict[str, np.ndarray]:
        """The parameters under the numpy names of ``models.actor_critic.init_agent``."""
        f = lambda v: np.asarray(v.numpy(), np.float64)  # noqa: E731
        out = {"lstm_W_x": f(self.lstm.kernel), "lstm_W_h": f(self.lstm.recurrent_kernel),
               "lstm_b": f(self.lstm.bias)}
        if self.unit is not None:
            out.update({f"unit_{k}": v.astype(np.float64)
                        for k, v in self.unit.get_params().items()})
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
