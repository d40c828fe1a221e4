"""The digit tasks' network after the CNN: which core reads the CNN's outputs, what the
loss is on, and the core's forward pass in numpy (the specification both frameworks'
digit networks are tested against; the loop around them: `models.image_sequence`).

Two cores:
- ``readout`` (the suite's): a cell of `models.reference.CELLS` over the CNN's outputs
  (n_out per image) from the zero state; an arithmetic cell's state is the answer, a
  classic cell's hidden state (``hidden_size``) goes through a linear readout.
- ``accumulator`` ([NAU]'s sequential MNIST model): the cell's state *is* the answer,
  h_t = cell([x_t, h_{t-1}]) with n_out inputs and n_out outputs for every cell (the
  LSTM too: hidden size n_out, its h read directly, no readout), from ``initial`` (0 for
  a sum, 1 for a product) in every state array.
[NAU]'s simplifications replace the cell: ``solved-accumulator`` h_t = h_{t-1} + x_t (a
sum) or h_{t-1} x_t (a product) from ``initial``, only the CNN trains; ``pass-through``
outputs x_t itself at every step, only the CNN trains.

``every`` (a task's ``answers = "every"``): the loss, the evaluation and the predictions a
task scores are over the outputs after every image against the running answer ([NAU]);
otherwise on the output after the last image. ``z_weight``: [NAU]'s R_z regulariser on the
unit behind the cell (`z_penalty`), a constant weight. ``init``: ``suite`` (Glorot CNN,
the suite's cell initialisation) or ``nau`` ([NAU]'s: PyTorch's default CNN
initialisation, the NAU cell's W ~ U(-r, r) with r = min(0.5, sqrt(3) sqrt(2 / (in + out))),
`models.cnn.cnn_init`, `models.image_sequence.init`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models import reference

ANSWERS = ("last", "every")
CORES = ("readout", "accumulator")
SIMPLIFICATIONS = (None, "solved-accumulator", "pass-through")
ACCUMULATE = ("sum", "product")
# the units [NAU] defines R_z for: its NAU and NMU, and its NAC+ (stable_nalu/layer/nac.py
# applies the NAU's form to W = tanh(W_hat) sigmoid(M_hat))
Z_UNITS = ("nau", "nmu", "nac")
Z_ADDITIVE = ("nau", "nac")  # R_z's NAU form; the NMU's otherwise
INITS = ("suite", "nau")


@dataclass(frozen=True)
class Core:
    """What follows the CNN, and what the loss reads (module docstring)."""

    cell: str
    kind: str = "readout"
    simplification: str | None = None
    accumulate: str = "sum"
    initial: float = 0.0
    every: bool = False
    z_weight: float = 0.0
    init: str = "suite"

    def __post_init__(self):
        for name, value, valid in (("core", self.kind, CORES),
                                   ("simplification", self.simplification, SIMPLIFICATIONS),
                                   ("accumulate", self.accumulate, ACCUMULATE),
                                   ("init", self.init, INITS)):
            if value not in valid:
                raise ValueError(f"bad {name} {value!r}; valid: {', '.join(map(str, valid))}")
        if self.simplification is not None and self.kind != "accumulator":
            raise ValueError(f"simplification {self.simplification!r} replaces [NAU]'s "
                             f"accumulator; it needs core='accumulator', not {self.kind!r}")
        for name in ("initial", "z_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not np.isfinite(value):
                raise ValueError(f"bad {name} {value!r}; expected a finite number")
        if self.z_weight < 0:
            raise ValueError(f"bad regulariser_z {self.z_weight!r}; expected >= 0 (0: off)")

    @classmethod
    def of(cls, task, cell: str) -> Core:
        """The core a digit task asks for (its optional attributes ``answers``, ``core``,
        ``simplification``, ``accumulate``, ``initial_state``, ``regulariser_z``,
        ``initialisation``; absent: the suite's readout core, scored on the last output)."""
        answers = getattr(task, "answers", "last")
        if answers not in ANSWERS:
            raise ValueError(f"bad answers {answers!r}; valid: {', '.join(ANSWERS)}")
        return cls(cell, kind=getattr(task, "core", "readout"),
                   simplification=getattr(task, "simplification", None),
                   accumulate=getattr(task, "accumulate", "sum"),
                   initial=float(getattr(task, "initial_state", 0.0)),
                   every=answers == "every",
                   z_weight=float(getattr(task, "regulariser_z", 0.0)),
                   init=getattr(task, "initialisation", "suite"))

    @property
    def has_cell(self) -> bool:
        return self.simplification is None

    @property
    def unit(self) -> str | None:
        """The unit behind the cell (its regulariser schedule applies), or None."""
        return reference.CELLS[self.cell].unit if self.has_cell else None

    @property
    def z(self) -> bool:
        """Whether R_z is on: a weight and a unit it is defined for."""
        return self.z_weight > 0 and self.unit in Z_UNITS

    def hidden(self, n_out: int, hidden_size: int) -> int:
        """The cell's state size."""
        if self.kind == "accumulator" or reference.CELLS[self.cell].unit:
            return n_out
        return hidden_size

    def readout(self) -> bool:
        """Whether a linear readout maps the state to the answer."""
        return self.kind == "readout" and not reference.CELLS[self.cell].unit


def z_penalty(unit: str, w: np.ndarray, x_mean: np.ndarray) -> np.ndarray:
    """[NAU]'s R_z per replica: mean over the unit's weight W (..., n_in, n_out) of
    (1 - |W|) x_mean^2 (NAU, NAC+) or (1 - W) (1 - x_mean)^2 (NMU), x_mean (..., n_in) the
    unit's inputs averaged over the batch and every time step of a training step."""
    x = np.asarray(x_mean)[..., :, None]
    w = np.asarray(w)
    return np.mean(((1 - np.abs(w)) * x ** 2) if unit in Z_ADDITIVE
                   else ((1 - w) * (1 - x) ** 2), axis=(-2, -1))


def start(core: Core, params: dict, shape: tuple[int, ...], n_out: int) -> tuple:
    """The state before the first image; ``shape`` (..., B) the leading axes of x_t."""
    if not core.has_cell:
        return (np.full((*shape, n_out), core.initial),)
    state = reference.cell_zero_state(core.cell, params["cell"], shape[-1])
    return tuple(np.broadcast_to(s, (*shape, s.shape[-1])) + core.initial for s in state)


def step(core: Core, params: dict, x: np.ndarray, state: tuple) -> tuple[np.ndarray, tuple]:
    """(output after this image, next state) from the CNN's outputs x (..., B, n_out)."""
    if core.simplification == "pass-through":
        return x, state
    if core.simplification == "solved-accumulator":
        h = state[0] + x if core.accumulate == "sum" else state[0] * x
        return h, (h,)
    h, state = reference.cell_step(core.cell, params["cell"], x, state)
    if params.get("readout"):
        h = reference.forward("linear", params["readout"], h)
    return h, state


def run(core: Core, params: dict, xs: np.ndarray) -> np.ndarray:
    """Outputs after every image, (..., B, T, n_out), of the CNN outputs xs (..., B, T, f)."""
    xs = np.asarray(xs, dtype=np.float64)
    state = start(core, params, xs.shape[:-2], xs.shape[-1])
    out = []
    for t in range(xs.shape[-2]):
        y, state = step(core, params, xs[..., t, :], state)
        out.append(y)
    return np.stack(out, axis=-2)
