"""The networks the tasks need, in TensorFlow / Keras 3."""
from __future__ import annotations

import numpy as np

from models.tf.units import keras, make


class Stack(keras.layers.Layer):
    """Units applied one after another (the static task's two-layer network)."""

    def __init__(self, layers: list[tuple[str, dict[str, np.ndarray]]]):
        super().__init__(name="stack", dtype="float32")
        self.units = [make(name, params) for name, params in layers]
        self.built = True

    def call(self, x):
        for unit in self.units:
            x = unit(x)
        return x

    def project_(self):
        for unit in self.units:
            unit.project_()
