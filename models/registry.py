"""Unit and model names -> per-framework builders, loaded lazily.

A framework that is not installed is a status with a reason, never an ImportError
in the middle of a sweep; nothing here imports torch or tensorflow at module level.
"""
from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from functools import cache

import numpy as np

from models import reference

FRAMEWORKS = {"torch": "torch", "tf": "tensorflow"}  # our name -> the package it needs
UNIT_NAMES = tuple(reference.UNITS)
CELL_NAMES = tuple(reference.CELLS)  # recurrent cells (reference.py, "Recurrent cells")


class UnknownName(ValueError):
    """A name that is not registered; the message lists the known ones."""


def check_unit(unit: str) -> str:
    if unit not in reference.UNITS:
        raise UnknownName(f"unknown unit {unit!r}; known: {', '.join(UNIT_NAMES)}")
    return unit


def check_framework(framework: str) -> str:
    if framework not in FRAMEWORKS:
        raise UnknownName(f"unknown framework {framework!r}; known: {', '.join(FRAMEWORKS)}")
    return framework


def parse_model(model: str) -> tuple[str, str]:
    """``nau`` -> (nau, nau); ``nau-nmu`` -> (nau, nmu): a model names its two layers."""
    parts = model.split("-")
    if len(parts) not in (1, 2) or not all(parts):
        raise UnknownName(f"bad model {model!r}; use UNIT or UNIT-UNIT with units from: "
                          f"{', '.join(UNIT_NAMES)}")
    for part in parts:
        if part not in reference.UNITS:
            raise UnknownName(f"unknown unit {part!r} in model {model!r}; known: "
                              f"{', '.join(UNIT_NAMES)}")
    return (parts[0], parts[-1])


@cache
def framework_missing(framework: str) -> str | None:
    """None when the framework can be imported, else why not (found without importing it)."""
    package = FRAMEWORKS[check_framework(framework)]
    if importlib.util.find_spec(package) is None:
        return f"{package} is not installed"
    return None


def framework_module(framework: str, name: str):
    """``models.<framework>.<name>``, imported on first use."""
    missing = framework_missing(framework)
    if missing:
        raise ModuleNotFoundError(missing)
    return importlib.import_module(f"models.{framework}.{name}")


def init_params(unit: str, n_in: int, n_out: int, seeds, init=None) -> dict[str, np.ndarray]:
    """Reference initialisation (or ``init``, with its signature) for each seed, stacked on
    a leading replica axis."""
    per_seed = [(init or reference.init)(check_unit(unit), n_in, n_out, np.random.default_rng(s))
                for s in seeds]
    return {k: np.stack([p[k] for p in per_seed]) for k in per_seed[0]}


def build(unit: str, framework: str, n_in: int, n_out: int, *, seed=0, replicas=None,
          params: dict[str, np.ndarray] | None = None):
    """A torch Module or Keras layer mapping (batch, n_in) -> (batch, n_out).

    With ``replicas=R`` every parameter gets a leading axis R (seeds seed..seed+R-1)
    and the unit maps (R, batch, n_in) -> (R, batch, n_out). ``params`` overrides
    the initialisation.
    """
    check_unit(unit)
    if params is None:
        seeds = [seed] if replicas is None else range(seed, seed + replicas)
        params = init_params(unit, n_in, n_out, seeds)
        if replicas is None:
            params = {k: v[0] for k, v in params.items()}
    return framework_module(framework, "units").make(unit, params)


def check_cell(cell: str) -> str:
    """A registered recurrent cell; a feed-forward-only unit is refused with the reason."""
    if cell in reference.CELLS:
        return cell
    if cell in reference.UNITS:
        raise UnknownName(f"unit {cell!r} is feed-forward only and cannot be a recurrent cell; "
                          f"known cells: {', '.join(CELL_NAMES)}")
    raise UnknownName(f"unknown cell {cell!r}; known cells: {', '.join(CELL_NAMES)}")


def init_cell_params(cell: str, n_in: int, hidden: int, seeds,
                     **options) -> dict[str, np.ndarray]:
    """Reference initialisation of a cell for each seed, stacked on a leading replica axis;
    ``options`` are the cell's own (see `reference.cell_init`)."""
    per_seed = [reference.cell_init(check_cell(cell), n_in, hidden, np.random.default_rng(s),
                                    **options) for s in seeds]
    return {k: np.stack([p[k] for p in per_seed]) for k in per_seed[0]}


def discover(package: str, path, base: type) -> dict[str, type]:
    """Every subclass of ``base`` with a ``name`` defined in the modules of ``package``
    (a framework's ``units`` package), each module imported; in the reference's order.
    A name defined twice is an error: adding a unit is one new file."""
    for info in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{info.name}")
    found, todo = {}, list(base.__subclasses__())
    while todo:
        cls = todo.pop(0)
        todo.extend(cls.__subclasses__())
        if cls.name and cls.__module__.startswith(package + "."):
            if cls.name in found and found[cls.name] is not cls:
                raise ValueError(f"unit {cls.name!r} is defined twice: {found[cls.name]} "
                                 f"and {cls}")
            found[cls.name] = cls
    order = {name: i for i, name in enumerate(reference.UNITS)}
    return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
