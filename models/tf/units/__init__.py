"""The units in TensorFlow / Keras 3, same names, shapes and math as `models/reference.py`.

One small file per unit (or per family of near-identical units) in this package;
every module here is imported and each `Unit` subclass with a ``name`` lands in
`CLASSES`, so a new unit is one new file. Parameters may carry a leading replica
axis; every op broadcasts over it, so R seeds run as one batched program.
"""
from __future__ import annotations

import numpy as np

from models import registry
from models.tf.units.base import EPS, Unit, _bias, keras, nac_weight, tf

__all__ = ["CLASSES", "EPS", "Unit", "make", "nac_weight", "_bias", "keras", "tf"]

CLASSES: dict[str, type[Unit]] = registry.discover(__name__, __path__, Unit)
globals().update({cls.__name__: cls for cls in CLASSES.values()})  # units.NAU etc.
__all__ += [cls.__name__ for cls in CLASSES.values()]


def make(unit: str, params: dict[str, np.ndarray]) -> Unit:
    return CLASSES[unit](params)
