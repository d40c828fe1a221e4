"""The numpy specification of every unit: parameters, initialisation, forward math.

Both frameworks are tested against these functions on shared weights, and both
initialise from `init` here, so the same seed starts the same network in torch and
tf. Every parameter may carry a leading replica axis ``(R, n_in, n_out)``; inputs
are then ``(R, batch, n_in)`` or a shared ``(batch, n_in)``.

Formulas (sources: [NALU] Trask et al. 2018, [NAU] Madsen & Johansen 2020):
- linear: ``y = x W + b``; relu / relu6: the same through ReLU / min(ReLU, 6).
- nac (NAC+): ``W = tanh(W_hat) * sigmoid(M_hat)``, ``y = x W`` [NALU].
- nacmul (NAC*): ``y = exp(log(|x| + eps) W)`` with the NAC weight [NALU].
- nalu: ``g = sigmoid(x G)``, ``y = g * (x W) + (1 - g) * exp(log(|x| + eps) W)``,
  one W shared by both paths, as in the paper [NALU].
- nau: ``y = x clip(W, -1, 1)``, regulariser ``mean(min(|W|, 1 - |W|))`` [NAU].
- nmu: ``y_j = prod_i (W_ij x_i + 1 - W_ij)``, ``W`` clipped to [0, 1], same
  regulariser [NAU].
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

EPS = 1e-7  # inside log(|x| + eps) of NAC* and NALU


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _mm(x, w):
    """x (..., B, n_in) or shared (B, n_in) times w (..., n_in, n_out)."""
    return np.matmul(x, w)


def _bias(b):
    return b[..., None, :]


def nac_weight(p):
    return np.tanh(p["W_hat"]) * _sigmoid(p["M_hat"])


def _linear(p, x):
    return _mm(x, p["W"]) + _bias(p["b"])


def _relu(p, x):
    return np.maximum(_linear(p, x), 0.0)


def _relu6(p, x):
    return np.clip(_linear(p, x), 0.0, 6.0)


def _nac(p, x):
    return _mm(x, nac_weight(p))


def _nacmul(p, x):
    return np.exp(_mm(np.log(np.abs(x) + EPS), nac_weight(p)))


def _nalu(p, x):
    w = nac_weight(p)
    g = _sigmoid(_mm(x, p["G"]))
    return g * _mm(x, w) + (1 - g) * np.exp(_mm(np.log(np.abs(x) + EPS), w))


def _nau(p, x):
    return _mm(x, np.clip(p["W"], -1.0, 1.0))


def _nmu(p, x):
    w = np.clip(p["W"], 0.0, 1.0)[..., None, :, :]
    return np.prod(x[..., :, None] * w + 1.0 - w, axis=-2)


def sparsity_regulariser(w):
    """[NAU]'s ``mean(min(|W|, 1 - |W|))`` over the weight axes; keeps replicas apart."""
    a = np.abs(w)
    return np.minimum(a, 1.0 - a).mean(axis=(-2, -1))


def _xavier(rng, n_in, n_out):
    r = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-r, r, size=(n_in, n_out))


def _init_mlp(rng, n_in, n_out):
    return {"W": _xavier(rng, n_in, n_out), "b": np.zeros(n_out)}


def _init_nac(rng, n_in, n_out):
    return {"W_hat": _xavier(rng, n_in, n_out), "M_hat": _xavier(rng, n_in, n_out)}


def _init_nalu(rng, n_in, n_out):
    return {**_init_nac(rng, n_in, n_out), "G": _xavier(rng, n_in, n_out)}


def _init_nau(rng, n_in, n_out):
    # E[W] = 0, Var[W] = 1 / (2 (n_in + n_out)), as in the project's plain loop.
    r = np.sqrt(3.0 / (2.0 * (n_in + n_out)))
    return {"W": rng.uniform(-r, r, size=(n_in, n_out))}


def _init_nmu(rng, n_in, n_out):
    return {"W": rng.uniform(0.25, 0.75, size=(n_in, n_out))}


@dataclass(frozen=True)
class UnitSpec:
    """What every framework must reproduce for one unit."""

    name: str
    title: str
    params: tuple[str, ...]
    forward: Callable
    init: Callable
    weights: Callable  # the effective weights that sparsity is measured on
    clip: tuple[float, float] | None = None  # range W is projected into after a step
    regularised: bool = False
    schedule: tuple[float, float, float] | None = None  # lambda_hat, start, end (paper steps)
    multiplicative: bool = False  # works in log-space or by products: undefined at x = 0


UNITS: dict[str, UnitSpec] = {}


def _register(spec: UnitSpec) -> None:
    if spec.name in UNITS:
        raise ValueError(f"unit {spec.name!r} is already registered")
    UNITS[spec.name] = spec


for _spec in (
    UnitSpec("linear", "Linear", ("W", "b"), _linear, _init_mlp, lambda p: p["W"]),
    UnitSpec("relu", "ReLU", ("W", "b"), _relu, _init_mlp, lambda p: p["W"]),
    UnitSpec("relu6", "ReLU6", ("W", "b"), _relu6, _init_mlp, lambda p: p["W"]),
    UnitSpec("nac", "NAC+", ("W_hat", "M_hat"), _nac, _init_nac, nac_weight),
    UnitSpec("nacmul", "NAC*", ("W_hat", "M_hat"), _nacmul, _init_nac, nac_weight,
             multiplicative=True),
    UnitSpec("nalu", "NALU", ("W_hat", "M_hat", "G"), _nalu, _init_nalu, nac_weight,
             multiplicative=True),
    UnitSpec("nau", "NAU", ("W",), _nau, _init_nau, lambda p: np.clip(p["W"], -1, 1),
             clip=(-1.0, 1.0), regularised=True, schedule=(0.01, 5e3, 5e4)),
    UnitSpec("nmu", "NMU", ("W",), _nmu, _init_nmu, lambda p: np.clip(p["W"], 0, 1),
             clip=(0.0, 1.0), regularised=True, schedule=(10.0, 1e6, 2e6)),
):
    _register(_spec)


def init(unit: str, n_in: int, n_out: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Initial parameters of one replica, float64, shaped (n_in, n_out) (b: (n_out,))."""
    return UNITS[unit].init(rng, n_in, n_out)


def forward(unit: str, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    return UNITS[unit].forward(params, np.asarray(x, dtype=np.float64))


def regulariser(unit: str, params: dict[str, np.ndarray]) -> np.ndarray | float:
    spec = UNITS[unit]
    return sparsity_regulariser(spec.weights(params)) if spec.regularised else 0.0


def sparsity_error(unit: str, params: dict[str, np.ndarray]) -> np.ndarray:
    """[NAU]'s sparsity error ``max_W min(|W|, |1 - |W||)``, per replica."""
    a = np.abs(UNITS[unit].weights(params))
    return np.minimum(a, np.abs(1.0 - a)).max(axis=(-2, -1))
