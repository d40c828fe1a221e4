"""[Primer]'s single-module benchmark as its public code runs it: the static task's
``protocol=primer``, which ``--budget primer`` sets.

`SETTINGS` is the one table of what [Primer]'s code does per unit where this suite's
defaults differ, each entry with the lines it comes from in bmistry4/nalm-benchmark. Tags
(docs/primer-protocol.md gives the files and the commits read): SH the benchmark script
``lfs_batch_jobs/single_layer_task/benchmarking/single_layer_benchmark.sh``, PY the loop
``experiments/single_layer_benchmark.py``, NACL / NAUL the NAC and NAU layers, NET the
single-layer network. A unit
without an entry trains as this suite defines it (nalu_sep, which [Primer] does not run).

The loop's iteration e (0-based) is this suite's update e + 1, so every schedule here is
a function of e = t - 1 of the update t it weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from tasks.base import PrimerReinit


@dataclass(frozen=True)
class Ramp:
    """lam * clip((e - start) / (end - start), 0, 1) (PY:618-622)."""

    lam: float
    start: int
    end: int

    def __call__(self, e: np.ndarray, op: str) -> np.ndarray:
        return self.lam * np.clip((e - self.start) / (self.end - self.start), 0.0, 1.0)


@dataclass(frozen=True)
class Stepwise:
    """The L1 weight beta, x10 at every ``every`` iterations until it reaches its end
    (PY:632-645; Decimal arithmetic keeps exact powers of 10, PY:575-580), per op. An op
    [Primer] does not run the unit on takes the first op's values."""

    betas: dict[str, tuple[float, ...]]
    every: int = 10_000

    def __call__(self, e: np.ndarray, op: str) -> np.ndarray:
        betas = np.asarray(self.betas.get(op, next(iter(self.betas.values()))))
        return betas[np.minimum(e // self.every, len(betas) - 1)]


@dataclass(frozen=True)
class Gated:
    """``weight`` for iterations e > ``after`` while the replica's last evaluated
    interpolation MSE is below ``below``, else 0 (PY:656)."""

    weight: float
    after: int
    below: float

    def __call__(self, e: np.ndarray, op: str) -> np.ndarray:
        return np.where(e > self.after, self.weight, 0.0)


@dataclass(frozen=True)
class Unit:
    """One unit's [Primer] settings; ``source`` names the lines each comes from."""

    source: str
    lr: float = 1e-3  # PY:187; Adam with torch's defaults (PY:547-548)
    regulariser: Ramp | Stepwise | Gated | None = None  # weight of the unit's own penalty
    clip_grad: float | None = None  # gradients clipped element-wise to +-clip_grad
    reinit: bool = False  # the loop's re-initialisation (`tasks.base.PrimerReinit`)
    init: str | None = None  # "nac": W_hat, M_hat ~ U(+-nac_radius); "nau": U(+-0.5)


_NAC_INIT = "NACL:22-30, NACL:55-58 (U(+-r), fan max(in + out, 5))"
SETTINGS: dict[str, Unit] = {
    "nac": Unit(init="nac", source=f"SH:177-185, SH:257-265; init {_NAC_INIT}"),
    "nacmul": Unit(init="nac", source=f"SH:39-47, SH:108-116; NET:17-18; init {_NAC_INIT}"),
    "nalu": Unit(init="nac", source=f"SH:49-57, 118-126, 187-195, 267-275; init {_NAC_INIT}"),
    "gnalu": Unit(init="nac", source=f"SH:94-103, 163-172, 219-228, 299-308; init {_NAC_INIT}"),
    "nau": Unit(regulariser=Ramp(0.01, 20_000, 35_000), init="nau",
                source="SH:197-206, SH:277-286 (--regualizer 0.01, scaling 20000-35000); "
                       "init NAUL:41-44"),
    "nmu": Unit(regulariser=Ramp(10.0, 20_000, 35_000),
                source="SH:28-37 (scaling 20000-35000; lambda: --regualizer default PY:36)"),
    "npu": Unit(lr=5e-3, regulariser=Stepwise({"mul": (1e-7, 1e-6, 1e-5),
                                               "div": (1e-9, 1e-8, 1e-7)}),
                source="SH:59-69, SH:128-138 (lr 5e-3, --regualizer-l1, beta start/end); "
                       "step 10000 PY:232, growth 10 PY:237"),
    "realnpu": Unit(lr=5e-3, regulariser=Stepwise({"mul": (1e-7, 1e-6, 1e-5),
                                                   "div": (1e-9, 1e-8, 1e-7)}),
                    source="SH:71-81, SH:140-150; step and growth as NPU"),
    "inalu": Unit(regulariser=Gated(0.05, 10_000, 1.0), clip_grad=0.1, reinit=True,
                  source="SH:83-92, 152-161, 208-217, 288-297 (--clip-grad-value 0.1, "
                         "--reinit); penalty gate PY:656; re-initialisation PY:683-700"),
}


def lr(unit: str) -> float | None:
    """The learning rate [Primer] trains ``unit`` at, or None for a unit it does not run."""
    return SETTINGS[unit].lr if unit in SETTINGS else None


def nac_radius(n_in: int, n_out: int) -> float:
    """r such that W = tanh(W_hat) sigmoid(M_hat), W_hat and M_hat ~ U(-r, r), has
    variance 2 / max(n_in + n_out, 5) (NACL:10-30): 9.47 for 2 -> 1."""
    def variance(r):
        return (1 - np.tanh(r) / r) * (r - np.tanh(r / 2)) / (2 * r)
    fan = max(n_in + n_out, 5)
    return float(brentq(lambda r: fan * variance(r) - 2, 1e-6, 10.0, xtol=1e-12))


def init(unit: str, n_in: int, n_out: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One replica's initial parameters as [Primer] draws them; the suite's own for the
    units whose initialisation it shares (`models.reference.init`)."""
    from models import reference

    kind = SETTINGS[unit].init if unit in SETTINGS else None
    if kind is None:
        return reference.init(unit, n_in, n_out, rng)
    if kind == "nau":  # r = min(0.5, sqrt(3) sqrt(2 / (in + out))) (NAUL:41-44)
        r = min(0.5, np.sqrt(3.0) * np.sqrt(2.0 / (n_in + n_out)))
        return {"W": rng.uniform(-r, r, size=(n_in, n_out))}
    r = nac_radius(n_in, n_out)
    out = {"W_hat": rng.uniform(-r, r, size=(n_in, n_out)),
           "M_hat": rng.uniform(-r, r, size=(n_in, n_out))}
    if "G" in reference.UNITS[unit].params:  # the gate: Xavier-uniform, as the suite's
        g = np.sqrt(6.0 / (n_in + n_out))
        out["G"] = rng.uniform(-g, g, size=(n_in, n_out))
    return out


def weights(units: list[str | None], ops: list[str], steps: np.ndarray,
            interpolation: np.ndarray | None) -> np.ndarray:
    """(T, R, layers) regulariser weights for updates ``steps`` of replicas whose ops are
    ``ops``; ``interpolation`` (R,) is each replica's last evaluated interpolation MSE
    (what `Gated` reads). Zero for a layer whose unit has no [Primer] regulariser."""
    e = np.asarray(steps) - 1
    out = np.zeros((len(e), len(ops), len(units)), dtype=np.float32)
    for j, unit in enumerate(units):
        schedule = SETTINGS[unit].regulariser if unit in SETTINGS else None
        if schedule is None:
            continue
        for op in dict.fromkeys(ops):
            rows = np.array([o == op for o in ops])
            out[:, rows, j] = schedule(e, op)[:, None]
        if isinstance(schedule, Gated):
            with np.errstate(invalid="ignore"):
                out[:, ~(np.asarray(interpolation) < schedule.below), j] = 0.0
    return out


class History:
    """[Primer]'s re-initialisation (`tasks.base.PrimerReinit`) played at evaluations: each
    replica's list of stored losses, as runs of equal values since its last
    re-initialisation; `stalled` extends it by one evaluation interval."""

    def __init__(self, rule: PrimerReinit, replicas: int, eval_steps: np.ndarray):
        self.rule, self.eval_steps = rule, eval_steps
        self.values = np.zeros((replicas, len(eval_steps)))
        self.counts = np.zeros((replicas, len(eval_steps)), dtype=np.int64)

    def stalled(self, value: np.ndarray, e: int) -> np.ndarray:
        """(R,) bool: replicas whose check fires in the interval after evaluation ``e``,
        where each stores ``value`` (R,), its interpolation MSE just evaluated."""
        start, end = int(self.eval_steps[e]), int(self.eval_steps[e + 1])
        self.values[:, e], self.counts[:, e] = value, end - start
        checks = np.arange(-(-max(start, 1) // self.rule.interval) * self.rule.interval, end,
                           self.rule.interval)  # iterations e > 0 with e % interval == 0
        cum_n = np.concatenate([np.zeros((len(value), 1), dtype=np.int64),
                                np.cumsum(self.counts[:, :e + 1], axis=1)], axis=1)
        cum_s = np.concatenate([np.zeros((len(value), 1)),
                                np.cumsum(self.counts[:, :e + 1] * self.values[:, :e + 1], axis=1)
                                ], axis=1)
        cum_q = np.concatenate([np.zeros((len(value), 1)), np.cumsum(
            self.counts[:, :e + 1] * self.values[:, :e + 1] ** 2, axis=1)], axis=1)
        vals = self.values[:, :e + 1]

        def prefix(h):  # sums of the first h entries, h (R, J)
            b = np.minimum((cum_n[:, None, 1:] <= h[..., None]).sum(-1), e)
            rows = np.arange(len(h))[:, None]
            part = h - cum_n[rows, b]
            v = vals[rows, b]
            return cum_s[rows, b] + part * v, cum_q[rows, b] + part * v * v

        n = cum_n[:, e][:, None] + (checks - start + 1)[None, :]  # list length at each check
        h = n // 2
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            s_all, q_all = prefix(n)
            s_first, q_first = prefix(h)
            m_first = s_first / h
            m_last = (s_all - s_first) / (n - h)
            var = (q_all - q_first) / (n - h) - m_last ** 2
            fire = (n > self.rule.stored) & (m_first <= m_last + np.sqrt(np.maximum(var, 0.0))) \
                & (m_last > self.rule.level)
        stalled = fire.any(axis=1)
        if stalled.any():  # the list restarts with the entries after the firing check
            first = checks[fire[stalled].argmax(axis=1)]
            self.counts[stalled, :e + 1] = 0
            self.counts[stalled, e] = end - 1 - first
        return stalled
