"""What every TensorFlow trainer shares: its device, its Adam, one summed-MSE step over
the replicas, and its parameters out and in (`models.engine.Trainer` is the protocol)."""
from __future__ import annotations

import numpy as np

from models.tf.units import keras, tf


def device_name(device: str) -> str:
    """TensorFlow's name for cpu, cuda[:N] or gpu[:N]; a GPU that TensorFlow does not
    see is an error that says so. TensorFlow is told to take GPU memory as it needs it,
    not all of it at once, so that torch can share the device in one process."""
    kind, _, index = device.lower().partition(":")
    if kind == "cpu":
        return "/CPU:0"
    if kind in ("cuda", "gpu"):
        gpus = tf.config.list_physical_devices("GPU")
        n = int(index or 0)
        if n >= len(gpus):
            raise RuntimeError(f"device {device!r} requested but TensorFlow sees "
                               f"{len(gpus)} GPU(s)")
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # already initialised: its setting stays
                pass
        return f"/GPU:{n}"
    raise ValueError(f"unknown device {device!r}; use cpu, cuda or gpu")


def adam(lr: float, variables) -> keras.optimizers.Adam:
    """Keras' Adam, built for ``variables``; epsilon 1e-8 as torch's (Keras adds it to
    sqrt(v) before the bias correction)."""
    opt = keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8)
    opt.build(variables)
    return opt


def variables_state(variables, opt) -> dict:
    """``variables`` and Adam's (its iteration count, learning rate and moments) as numpy
    copies: what a checkpoint keeps."""
    return {"tensors": [v.numpy().copy() for v in variables],
            "adam": [v.numpy().copy() for v in opt.variables]}


def assign_state(variables, opt, state: dict, device: str) -> None:
    """`variables_state`'s arrays assigned back, bit for bit; every shape is checked first (a
    ValueError changes nothing)."""
    pairs = [(v, value) for vs, values in ((variables, state["tensors"]),
                                           (opt.variables, state["adam"]))
             for v, value in zip(vs, values, strict=True)]
    if any(tuple(v.shape) != np.shape(value) for v, value in pairs):
        raise ValueError("its weights or Adam state have other shapes")
    with tf.device(device):
        for v, value in pairs:
            v.assign(value)


class TFTrainer:
    """Base of the TensorFlow trainers. A subclass sets ``self.net`` (with ``units``, the
    layers `params`, `reinit` and the regularisers handle, and ``project_``), ``self.vars``
    (what the gradient is taken of), ``self.opt`` and ``self._regularised`` (indices of the
    units with a regulariser)."""

    clip_grad: float | None = None  # gradients clipped element-wise to +-clip_grad
    loss_scale: float = 1.0  # multiplies each replica's MSE term (N * n_out / 2: l2_loss)

    def __init__(self, device: str = "cpu"):
        self.device = device_name(device)

    def _mse_step(self, forward, y, lam) -> None:
        """One Adam step on the per-replica MSE of ``forward()`` against y, plus each
        regularised unit's penalty times its lambda, summed over replicas (so each replica's
        gradient is its own); then the units' projections. lam (layers,) or per replica
        (R, layers); lam = 0 adds exactly nothing, as torch's skip of an inactive
        regulariser. The MSE term is multiplied by ``loss_scale`` where it is not 1."""
        grads = self._mse_grads(forward, y, lam)
        if self.clip_grad is not None:
            grads = [tf.clip_by_value(g, -self.clip_grad, self.clip_grad) for g in grads]
        self.opt.apply_gradients(zip(grads, self.net.trainable_variables))
        self.net.project_()

    def _mse_grads(self, forward, y, lam) -> list:
        """`_mse_step`'s gradients, one per ``self.net.trainable_variables``."""
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(forward() - y), axis=[-2, -1])
            if self.loss_scale != 1.0:
                loss = loss * self.loss_scale
            for j in self._regularised:
                loss = loss + lam[..., j] * self.net.units[j].regulariser()
            total = tf.reduce_sum(loss)
        return tape.gradient(total, self.vars)

    def params(self) -> list[dict[str, np.ndarray]]:
        return [u.get_params() for u in self.net.units]

    def get_state(self) -> dict:
        """What a checkpoint keeps (`models.checkpoint`): every variable of ``self.net``
        and of Adam (`variables_state`)."""
        return variables_state(self.net.variables, self.opt)

    def set_state(self, state: dict) -> None:
        """`get_state`'s arrays assigned back (`assign_state`)."""
        assign_state(self.net.variables, self.opt, state, self.device)

    def reinit(self, mask: np.ndarray, layers: list[dict[str, np.ndarray] | None],
               keep_moments: bool = False) -> None:
        """Give the replicas in ``mask`` (R,) the parameters ``layers`` (per layer, arrays
        with one row per selected replica; None keeps the layer) and zero their Adam
        moments unless ``keep_moments`` ([Primer]'s loop keeps them); other replicas are
        untouched. Adam's step count (``iterations``) is shared by all replicas, so it goes
        on (`tasks.base.Reinit`)."""
        mask = np.asarray(mask, dtype=bool)
        with tf.device(self.device):
            for unit, new in zip(self.net.units, layers):
                for k, value in (new or {}).items():
                    var = getattr(unit, k)
                    data = var.numpy()
                    data[mask] = np.asarray(value, dtype=np.float32)
                    var.assign(data)
                    if keep_moments:
                        continue
                    i = self.opt._get_variable_index(var)
                    for slots in (self.opt._momentums, self.opt._velocities):
                        moment = slots[i].numpy()
                        moment[mask] = 0.0
                        slots[i].assign(moment)
