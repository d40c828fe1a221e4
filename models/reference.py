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

Units compared in [Primer] (Mistry, Hare, Gerding 2022), defined further down:
- nalu_sep: NALU with separate NAC weights for the two paths, ``W_a`` (from W_hat_a,
  M_hat_a) and ``W_m`` (W_hat_m, M_hat_m); gate ``sigmoid(x G)`` as NALU. Not the
  paper's NALU, hence its own name.
- inalu [iNALU] (Schloer, Ring, Hotho 2020): separate weights W_a, W_m; an
  input-independent gate ``g = sigmoid(g_hat)`` per output;
  ``m = exp(min(log(max(|x|, 1e-7)) W_m, 20))`` (the log-space sum clipped at omega = 20);
  sign recovery ``s_j = prod_i (sign(x_i) |W_m,ij| + 1 - |W_m,ij|)``;
  ``y = g (x W_a) + (1 - g) m s``. Regulariser ``sum_P mean(max(20 - |P|, 0))`` over
  W_hat_a, M_hat_a, W_hat_m, M_hat_m, g_hat. Its re-initialisation of a run whose loss
  stalls is an option of the static task's loop, off by default (``--param reinit=on``;
  the rule: ``tasks.base.Reinit``); its gradient clipping runs under protocol primer
  (`models.primer`).
- npu [NPU] (Heim, Pevny, Smidl 2020): relevance gate ``g = clip(g_hat, 0, 1)``
  per input, ``r = g (|x| + eps) + 1 - g``, ``k = pi g [x < 0]``;
  ``y = exp(log(r) W_re - k W_im) * cos(k W_re + log(r) W_im)`` (the real part of the
  complex power ``prod_i x_i^(W_re + i W_im)``). Regulariser: L1 of every parameter.
- realnpu [NPU]: ``y = exp(log(r) W_re) * cos(k W_re)`` (W_im = 0), L1 regulariser.
- gnalu (G-NALU, golden-ratio NALU, as run in [Primer]): NALU with the golden-ratio
  base ``phi`` in the NAC weight and the gate: ``W = tanh(ln(phi) W_hat) *
  sigmoid(ln(phi) M_hat)``, ``g = sigmoid(ln(phi) x G)``; the multiplicative path
  ``phi ** (log(|x| + eps) W / ln(phi))`` equals NALU's ``exp(log(|x| + eps) W)``.
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
    # per-replica penalty of the params; None with regularised=True is [NAU]'s sparsity
    # regulariser on ``weights``
    penalty: Callable | None = None
    # its paper re-initialises a stalled run: opts in to the loop's optional `Reinit`
    # (models/supervised.py; static_arithmetic's ``reinit`` parameter, off by default)
    reinit: bool = False


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


# ---------------------------------------------------------------------------
# Units compared in [Primer]: iNALU, NPU, RealNPU, G-NALU, NALU with separate weights
# ---------------------------------------------------------------------------
# Sources: [iNALU] Schloer, Ring, Hotho, Front. Artif. Intell. 2020; [NPU] Heim,
# Pevny, Smidl, NeurIPS 2020 (arXiv:2006.01681); [G-NALU] Rana et al. 2019 as run
# in [Primer] (golden-ratio base: tanh_phi(z) = tanh(z ln phi), s_phi(z) = s(z ln phi));
# hyper-parameters as [Primer]'s public code runs them (bmistry4/nalm-benchmark).
# Every formula is defined for every real input (the eps / max / gate guards below), so
# no unit is refused for a range containing 0 or negatives: a unit that cannot represent
# an op there (NAC*, NALU, nalu_sep, gnalu cannot output a negative product) runs and
# is recorded as a failure.
# Regulariser schedules (this suite's choices; the papers tie them to their own loops):
# iNALU's penalty ramps 0 -> 10 over paper steps 1e6..2e6, the suite's NMU schedule
# ([iNALU] applies it once the loss is small); NPU's L1 ramps 0 -> 1e-5 over the whole
# run. [Primer]'s own settings (lr, schedules, initialisation, clipping) are
# `models.primer`'s, used by the static task's protocol primer.

LN_PHI = float(np.log((1.0 + np.sqrt(5.0)) / 2.0))  # golden ratio phi: phi**z = exp(z ln phi)
INALU_EPS = 1e-7  # log(max(|x|, eps)) [iNALU]
INALU_OMEGA = 20.0  # the log-space sum is clipped at omega before exp [iNALU]
INALU_T = 20.0  # the regulariser pushes |W_hat|, |M_hat|, |g| beyond t [iNALU]
NPU_EPS = float(np.finfo(np.float32).eps)  # |x| + eps inside the NPU's log [NPU]


def _nac_w(w_hat, m_hat, scale=1.0):
    return np.tanh(scale * w_hat) * _sigmoid(scale * m_hat)


def _weights_am(p):
    """The additive and multiplicative NAC weights side by side: (..., n_in, 2 n_out)."""
    return np.concatenate([_nac_w(p["W_hat_a"], p["M_hat_a"]),
                           _nac_w(p["W_hat_m"], p["M_hat_m"])], axis=-1)


def _nalu_sep(p, x):
    g = _sigmoid(_mm(x, p["G"]))
    a = _mm(x, _nac_w(p["W_hat_a"], p["M_hat_a"]))
    m = np.exp(_mm(np.log(np.abs(x) + EPS), _nac_w(p["W_hat_m"], p["M_hat_m"])))
    return g * a + (1 - g) * m


def gnalu_weight(p):
    return _nac_w(p["W_hat"], p["M_hat"], LN_PHI)


def _gnalu(p, x):
    w = gnalu_weight(p)
    g = _sigmoid(LN_PHI * _mm(x, p["G"]))
    # [Primer]'s phi ** (z / ln phi) with z = log(|x| + eps) W is exp(z): same as NALU's
    return g * _mm(x, w) + (1 - g) * np.exp(_mm(np.log(np.abs(x) + EPS), w))


def _inalu(p, x):
    wa, wm = _nac_w(p["W_hat_a"], p["M_hat_a"]), _nac_w(p["W_hat_m"], p["M_hat_m"])
    a = _mm(x, wa)
    m = np.exp(np.minimum(_mm(np.log(np.maximum(np.abs(x), INALU_EPS)), wm), INALU_OMEGA))
    aw = np.abs(wm)[..., None, :, :]
    sign = np.prod(np.sign(x)[..., :, None] * aw + 1.0 - aw, axis=-2)
    g = _sigmoid(p["g"])[..., None, :]
    return g * a + (1 - g) * m * sign


def _inalu_penalty(p):
    """sum over W_hat_a, M_hat_a, W_hat_m, M_hat_m, g of mean(max(t - |w|, 0)), t = 20."""
    total = 0.0
    for k in ("W_hat_a", "M_hat_a", "W_hat_m", "M_hat_m", "g"):
        axes = (-1,) if k == "g" else (-2, -1)
        total = total + np.maximum(INALU_T - np.abs(p[k]), 0.0).mean(axis=axes)
    return total


def _npu_inputs(p, x):
    """[NPU]'s relevance gate: r = g (|x| + eps) + 1 - g, k = pi g [x < 0], g clipped to
    [0, 1]; an irrelevant input (g = 0) becomes the neutral 1."""
    g = np.clip(p["g"], 0.0, 1.0)[..., None, :]
    r = g * (np.abs(x) + NPU_EPS) + 1.0 - g
    return np.log(r), g * np.pi * (x < 0)


def _npu(p, x):
    log_r, k = _npu_inputs(p, x)
    return (np.exp(_mm(log_r, p["W_re"]) - _mm(k, p["W_im"]))
            * np.cos(_mm(k, p["W_re"]) + _mm(log_r, p["W_im"])))


def _realnpu(p, x):
    log_r, k = _npu_inputs(p, x)
    return np.exp(_mm(log_r, p["W_re"])) * np.cos(_mm(k, p["W_re"]))


def _l1_penalty(keys):
    def penalty(p):
        """L1 norm of every parameter (per replica) [NPU]."""
        return sum(np.abs(p[k]).sum(axis=(-1,) if k == "g" else (-2, -1)) for k in keys)
    return penalty


def _init_nalu_sep(rng, n_in, n_out):
    return {"W_hat_a": _xavier(rng, n_in, n_out), "M_hat_a": _xavier(rng, n_in, n_out),
            "W_hat_m": _xavier(rng, n_in, n_out), "M_hat_m": _xavier(rng, n_in, n_out),
            "G": _xavier(rng, n_in, n_out)}


def _init_inalu(rng, n_in, n_out):
    # [iNALU]'s public code: W_hat ~ N(0.88, 0.2), M_hat ~ N(0.5, 0.2), g ~ N(0, 0.2)
    def normal(mean, shape):
        return rng.normal(mean, 0.2, size=shape)
    return {"W_hat_a": normal(0.88, (n_in, n_out)), "M_hat_a": normal(0.5, (n_in, n_out)),
            "W_hat_m": normal(0.88, (n_in, n_out)), "M_hat_m": normal(0.5, (n_in, n_out)),
            "g": normal(0.0, (n_out,))}


def _init_npu(rng, n_in, n_out):
    # [NPU]: W_re Xavier-uniform, W_im = 0, relevance gate g = 0.5
    return {"W_re": _xavier(rng, n_in, n_out), "W_im": np.zeros((n_in, n_out)),
            "g": np.full(n_in, 0.5)}


def _init_realnpu(rng, n_in, n_out):
    return {"W_re": _xavier(rng, n_in, n_out), "g": np.full(n_in, 0.5)}


def _npu_weights(p):
    return np.concatenate([p["W_re"], p["W_im"]], axis=-1)


for _spec in (
    UnitSpec("nalu_sep", "NALU (separate weights)",
             ("W_hat_a", "M_hat_a", "W_hat_m", "M_hat_m", "G"), _nalu_sep, _init_nalu_sep,
             _weights_am, multiplicative=True),
    UnitSpec("inalu", "iNALU", ("W_hat_a", "M_hat_a", "W_hat_m", "M_hat_m", "g"), _inalu,
             _init_inalu, _weights_am, regularised=True, schedule=(10.0, 1e6, 2e6),
             multiplicative=True, penalty=_inalu_penalty, reinit=True),
    UnitSpec("npu", "NPU", ("W_re", "W_im", "g"), _npu, _init_npu, _npu_weights,
             regularised=True, schedule=(1e-5, 0.0, 5e6), multiplicative=True,
             penalty=_l1_penalty(("W_re", "W_im", "g"))),
    UnitSpec("realnpu", "RealNPU", ("W_re", "g"), _realnpu, _init_realnpu,
             lambda p: p["W_re"], regularised=True, schedule=(1e-5, 0.0, 5e6),
             multiplicative=True, penalty=_l1_penalty(("W_re", "g"))),
    UnitSpec("gnalu", "G-NALU", ("W_hat", "M_hat", "G"), _gnalu, _init_nalu, gnalu_weight,
             multiplicative=True),
):
    _register(_spec)


def init(unit: str, n_in: int, n_out: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Initial parameters of one replica, float64, shaped (n_in, n_out) (b: (n_out,))."""
    return UNITS[unit].init(rng, n_in, n_out)


def forward(unit: str, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    return UNITS[unit].forward(params, np.asarray(x, dtype=np.float64))


def regulariser(unit: str, params: dict[str, np.ndarray]) -> np.ndarray | float:
    spec = UNITS[unit]
    if not spec.regularised:
        return 0.0
    if spec.penalty is not None:
        return spec.penalty(params)
    return sparsity_regulariser(spec.weights(params))


def sparsity_error(unit: str, params: dict[str, np.ndarray]) -> np.ndarray:
    """[NAU]'s sparsity error ``max_W min(|W|, |1 - |W||)``, per replica."""
    a = np.abs(UNITS[unit].weights(params))
    return np.minimum(a, np.abs(1.0 - a)).max(axis=(-2, -1))


# ---------------------------------------------------------------------------
# Recurrent cells
# ---------------------------------------------------------------------------
# A cell maps (x_t, state) -> (h_t, state); ``state`` is a tuple of arrays, (h,) or
# (h, c) for the LSTM and MC-LSTM, zeros at t = 0. Inputs are (B, n_in) or (R, B, n_in) and every
# parameter may carry a leading replica axis, as for the units. Gate order and biases
# follow PyTorch's nn.LSTM / nn.GRU / nn.RNN (one LSTM/RNN bias: torch's two biases only
# ever appear as a sum there). Initialisation of the classic cells is PyTorch's default,
# every weight and bias U(-1/sqrt(H), 1/sqrt(H)); an arithmetic unit used as a cell,
# h_t = unit([x_t, h_{t-1}]), keeps the unit's own parameters and initialisation with
# n_in + H inputs and H outputs.


def _split(z, k):
    return np.split(z, k, axis=-1)


def _lstm(p, x, state):
    h, c = state
    i, f, g, o = _split(_mm(x, p["W"]) + _mm(h, p["U"]) + _bias(p["b"]), 4)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    return h, (h, c)


def _gru(p, x, state):
    (h,) = state
    xr, xz, xn = _split(_mm(x, p["W"]) + _bias(p["b"]), 3)
    hr, hz, hn = _split(_mm(h, p["U"]) + _bias(p["b_h"]), 3)
    r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
    h = (1.0 - z) * np.tanh(xn + r * hn) + z * h
    return h, (h,)


def _rnn(activation):
    def step(p, x, state):
        h = activation(_mm(x, p["W"]) + _mm(state[0], p["U"]) + _bias(p["b"]))
        return h, (h,)
    return step


def _unit_cell(unit):
    def step(p, x, state):
        (h,) = state
        x = np.broadcast_to(x, (*h.shape[:-1], x.shape[-1]))  # a shared input meets R states
        h = UNITS[unit].forward(p, np.concatenate([x, h], axis=-1))
        return h, (h,)
    return step


def _init_gated(gates, names):
    def init(rng, n_in, hidden):
        k = 1.0 / np.sqrt(hidden)
        shapes = {"W": (n_in, gates * hidden), "U": (hidden, gates * hidden),
                  "b": (gates * hidden,), "b_h": (gates * hidden,)}
        return {name: rng.uniform(-k, k, size=shapes[name]) for name in names}
    return init


def _init_unit_cell(unit):
    return lambda rng, n_in, hidden: UNITS[unit].init(rng, n_in + hidden, hidden)


# MC-LSTM [MC-LSTM] (Hoedt et al., ICML 2021) as its authors ran it on recurrent arithmetic,
# the fork hoedt/stable-nalu at commit 4664c79 (file:line; docs/tasks.md has the table):
# - x_t = [mass inputs m_t (n_in), auxiliary inputs a_t (aux)]; the fork has one auxiliary
#   input (layer/mclstm.py:10-11), the end-of-sequence marker: 1 at every step, -1 at the
#   last (network/simple_function_recurrent.py:75-77), appended here by `end_marker`.
# - input gate ("junction") J and redistribution R: learned matrices, input-independent,
#   each row softmax-normalised so every row sums to 1 (mass is conserved):
#   experiments/simple_function_recurrent.py:259 passes junct='linear', mclstm.py:13,17-25
#   (redist defaults to 'linear'), LinearRedistribution mclstm.py:133-160.
# - output gate o = sigmoid(a_t W_o + b_o) (Gate, mclstm.py:110-130).
# - step (mclstm.py:35-46): m = m_t J + c R; h = o m (the outgoing mass, what the
#   task's linear output layer reads, network/simple_function_recurrent.py:38-39,89-90);
#   c' = (1 - o) m.
# - init (mclstm.py:29-33, 126-127, 149-157): J orthogonal (n_in != hidden), R the
#   identity (square), W_o orthogonal, b_o = -3. Orthogonal as torch.nn.init.orthogonal_
#   on the fork's tensors: J is its (n_in, hidden) matrix, W_o its Gate's (hidden, aux)
#   weight transposed to this suite's (in, out) layout. Same distributions, numpy draws.


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _orthogonal(rng, rows, cols):
    """torch.nn.init.orthogonal_ of a (rows, cols) weight: Q of a Gaussian's QR, signs
    fixed by R's diagonal (a random orthogonal matrix, or orthonormal rows / columns)."""
    if rows * cols == 0:
        return np.zeros((rows, cols))
    a = rng.normal(size=(rows, cols))
    flip = rows < cols
    q, r = np.linalg.qr(a.T if flip else a)
    q = q * np.sign(np.diag(r))
    return q.T if flip else q


def end_marker(xs, aux=1):
    """xs (..., T, n) -> (..., T, n + aux): the fork's auxiliary input appended, 1 at every
    step and -1 at the last (network/simple_function_recurrent.py:75-77)."""
    xs = np.asarray(xs)
    marker = np.ones((*xs.shape[:-1], aux), dtype=xs.dtype)
    marker[..., -1, :] = -1
    return np.concatenate([xs, marker], axis=-1)


def _mclstm(p, x, state):
    _, c = state  # (h, c) as the LSTM's: loops read h as state[0]
    n_mass = p["J"].shape[-2]
    mass, aux = x[..., :n_mass], x[..., n_mass:]
    o = _sigmoid(_mm(aux, p["W_o"]) + _bias(p["b_o"]))
    m = _mm(mass, _softmax(p["J"])) + _mm(c, _softmax(p["r"]))
    h = o * m
    return h, (h, (1.0 - o) * m)


def _init_mclstm(rng, n_in, hidden, aux=0):
    """n_in mass inputs and ``aux`` auxiliary inputs (the gates' only input); aux = 0 gives
    input-independent gates (o = sigmoid(b_o)), aux = 1 the fork's end-of-sequence marker."""
    if isinstance(aux, bool) or not isinstance(aux, (int, np.integer)) or aux < 0:
        raise ValueError(f"mclstm: aux must be a non-negative integer, got {aux!r}")
    return {"r": np.eye(hidden), "J": _orthogonal(rng, n_in, hidden),
            "W_o": _orthogonal(rng, hidden, aux).T, "b_o": np.full(hidden, -3.0)}


@dataclass(frozen=True)
class CellSpec:
    """What every framework must reproduce for one recurrent cell."""

    name: str
    title: str
    params: tuple[str, ...]
    init: Callable  # (rng, n_in, hidden) -> params of one replica
    step: Callable  # (params, x, state) -> (h, state)
    formula: str
    source: str
    gates: int = 1  # hidden = the recurrent weight's last axis / gates
    unit: str | None = None  # the arithmetic unit applied to [x_t, h_{t-1}], if any
    n_state: int = 1  # arrays in the state tuple
    options: tuple[str, ...] = ()  # keyword options of ``init`` (default: none)
    # the options the sequence loop inits the cell with (`models.sequence`)
    sequence_options: tuple[tuple[str, object], ...] = ()


CELLS: dict[str, CellSpec] = {}


def _register_cell(spec: CellSpec) -> None:
    if spec.name in CELLS:
        raise ValueError(f"cell {spec.name!r} is already registered")
    CELLS[spec.name] = spec


for _cell in (
    CellSpec("lstm", "LSTM", ("W", "U", "b"), _init_gated(4, ("W", "U", "b")), _lstm,
             "i,f,g,o = x W + h U + b; c' = s(f) c + s(i) tanh(g); h' = s(o) tanh(c')",
             "Hochreiter & Schmidhuber 1997; gate order of torch.nn.LSTM", gates=4, n_state=2),
    CellSpec("gru", "GRU", ("W", "U", "b", "b_h"), _init_gated(3, ("W", "U", "b", "b_h")),
             _gru, "r,z = s(x W + b + h U + b_h); n = tanh(x W_n + b_n + r (h U_n + b_hn)); "
             "h' = (1 - z) n + z h", "Cho et al. 2014; torch.nn.GRU", gates=3),
    CellSpec("rnn_tanh", "RNN (tanh)", ("W", "U", "b"), _init_gated(1, ("W", "U", "b")),
             _rnn(np.tanh), "h' = tanh(x W + h U + b)", "Elman 1990; torch.nn.RNN"),
    CellSpec("rnn_relu", "RNN (ReLU)", ("W", "U", "b"), _init_gated(1, ("W", "U", "b")),
             _rnn(lambda z: np.maximum(z, 0.0)), "h' = max(x W + h U + b, 0)",
             "torch.nn.RNN(nonlinearity='relu'); [NAU]'s recurrent baseline"),
    *(CellSpec(unit, f"{UNITS[unit].title} cell", UNITS[unit].params, _init_unit_cell(unit),
               _unit_cell(unit), f"h' = {UNITS[unit].title}([x, h])",
               "[NALU] section 4 (NAC/NALU as recurrent cores); [NAU] recurrent task",
               unit=unit) for unit in ("nac", "nalu", "nau", "nmu")),
    CellSpec("mclstm", "MC-LSTM", ("r", "J", "W_o", "b_o"), _init_mclstm, _mclstm,
             "o = s(a W_o + b_o); m = x softmax(J) + c softmax(r); h' = o m; c' = (1 - o) m",
             "Hoedt et al. 2021 (MC-LSTM); hoedt/stable-nalu@4664c79 stable_nalu/layer/"
             "mclstm.py:35-46 with junct='linear'", options=("aux",),
             n_state=2, sequence_options=(("aux", 1),)),
):
    _register_cell(_cell)


def cell_init(name: str, n_in: int, hidden: int, rng: np.random.Generator,
              **options) -> dict[str, np.ndarray]:
    """Initial parameters of one replica of a cell, float64; ``options`` are the cell's
    own (`CellSpec.options`, e.g. MC-LSTM's ``aux``), refused for any other cell."""
    unknown = set(options) - set(CELLS[name].options)
    if unknown:
        raise ValueError(f"cell {name!r} takes no option {', '.join(sorted(unknown))}; "
                         f"its options: {', '.join(CELLS[name].options) or 'none'}")
    return CELLS[name].init(rng, n_in, hidden, **options)


def cell_hidden(name: str, params: dict[str, np.ndarray]) -> int:
    spec = CELLS[name]
    return params[spec.params[0]].shape[-1] // spec.gates


def cell_zero_state(name: str, params: dict[str, np.ndarray], batch: int) -> tuple:
    """Zeros shaped (R, B, H) when params carry a replica axis, else (B, H)."""
    spec = CELLS[name]
    first = params[spec.params[0]]
    lead = first.shape[:-2]
    return tuple(np.zeros((*lead, batch, cell_hidden(name, params)))
                 for _ in range(spec.n_state))


def cell_step(name: str, params: dict[str, np.ndarray], x: np.ndarray, state: tuple):
    """One step: (h_t, state_t) from x_t and state_{t-1}."""
    return CELLS[name].step(params, np.asarray(x, dtype=np.float64), state)


def cell_run(name: str, params: dict[str, np.ndarray], xs: np.ndarray) -> np.ndarray:
    """The last h of a sequence xs shaped (..., B, T, n_in), from the zero state."""
    xs = np.asarray(xs, dtype=np.float64)
    state = cell_zero_state(name, params, xs.shape[-3])
    if xs.ndim == 4:  # per-replica inputs
        state = tuple(np.broadcast_to(s, (xs.shape[0], *s.shape[-2:])) for s in state)
    h = state[0]
    for t in range(xs.shape[-2]):
        h, state = cell_step(name, params, xs[..., t, :], state)
    return h


def cell_regulariser(name: str, params: dict[str, np.ndarray]) -> np.ndarray | float:
    unit = CELLS[name].unit
    return regulariser(unit, params) if unit else 0.0
