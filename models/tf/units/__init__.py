"""The units in TensorFlow / Keras 3, same names, shapes and math as `models/reference.py`.

One small file per unit (or per family of near-identical units) in this package;
every module here is imported and each `Unit` subclass with a ``name`` lands in
`CLASSES`, so a new unit is one new file. Parameters may carry a leading replica
axis; every op broadcasts over it, so R seeds run as one batched program.
"""
from __future__ import annotations

import importlib
import pkgutil

import numpy as np

from models import reference
from models.tf.units.base import EPS, Unit, _bias, keras, nac_weight, tf

__all__ = ["CLASSES", "EPS", "Unit", "make", "nac_weight", "_bias", "keras", "tf"]


def _discover() -> dict[str, type[Unit]]:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    found, todo = {}, list(Unit.__subclasses__())
    while todo:
        cls = todo.pop(0)
        todo.extend(cls.__subclasses__())
        if cls.name and cls.__module__.startswith(__name__ + "."):
            if cls.name in found and found[cls.name] is not cls:
                raise ValueError(f"unit {cls.name!r} is defined twice: {found[cls.name]} "
                                 f"and {cls}")
            found[cls.name] = cls
    order = {name: i for i, name in enumerate(reference.UNITS)}
    return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


CLASSES: dict[str, type[Unit]] = _discover()
globals().update({cls.__name__: cls for cls in CLASSES.values()})  # units.NAU etc.
__all__ += [cls.__name__ for cls in CLASSES.values()]


def make(unit: str, params: dict[str, np.ndarray]) -> Unit:
    return CLASSES[unit](params)
