"""T optimiser steps as one compiled while-loop, compiled once per trainer.

XLA compiles a function once per concrete input shape, and a run's chunks come in two or
three lengths (the data budget's chunk and the remainders before each evaluation), and
compiling each new length can cost more than the steps it serves. So every chunk is
padded to the longest seen so far and the loop runs only its real steps; the padding is
never read.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from models.tf.units import tf


class CompiledSteps:
    """``steps(*arrays)`` runs ``step(*(a[t] for a in arrays))`` for t < len(arrays[0]).
    Arrays are passed as float32 (the supervised trainers' inputs, targets and lambdas).
    With ``fixed=k`` the first k arrays are passed whole to every step (a training set that
    every step uses) and the steps are counted on the others."""

    def __init__(self, step: Callable, signature: Sequence[tf.TensorSpec],
                 jit_compile: bool = True, fixed: int = 0):
        self._step = step
        self.fixed = fixed
        self._fn = tf.function(self._loop, input_signature=[
            *signature, tf.TensorSpec([], tf.int32)], autograph=False, jit_compile=jit_compile)
        self.capacity = 0  # steps in every array passed to the compiled loop

    def _loop(self, *args):
        *arrays, n = args

        def body(t):
            self._step(*arrays[:self.fixed], *(a[t] for a in arrays[self.fixed:]))
            return (t + 1,)
        tf.while_loop(lambda t: t < n, body, (tf.constant(0),), parallel_iterations=1)

    def reserve(self, steps: int) -> None:
        """Pad every chunk to at least ``steps`` steps: a run that knows its longest chunk
        compiles once even when a shorter one comes first."""
        self.capacity = max(self.capacity, steps)

    def traces(self) -> int:
        """How often the loop was traced (a new trace is a new XLA compilation)."""
        return self._fn.experimental_get_tracing_count()

    def stage(self, *arrays: np.ndarray) -> list:
        """``arrays`` padded to the capacity and copied into tensors: made ahead of time (on
        the data thread, models/engine.py), the copy overlaps the steps before."""
        return [tf.constant(np.asarray(a, dtype=np.float32)) if i < self.fixed else
                tf.constant(padded(np.asarray(a, dtype=np.float32), max(self.capacity, a.shape[0])))
                for i, a in enumerate(arrays)]

    def __call__(self, *arrays, steps: int | None = None) -> None:
        """Run the first ``steps`` rows (default: all) of ``arrays``, numpy arrays or
        tensors from `stage`."""
        stepped = arrays[self.fixed:]
        n = stepped[0].shape[0] if steps is None else steps
        if not 0 <= n <= min(a.shape[0] for a in stepped):
            # XLA clamps an index past the end: the loop would silently reuse the last row
            raise ValueError(f"steps={n} outside the chunk's {[a.shape[0] for a in stepped]} rows")
        self.capacity = max(self.capacity, n)
        self._fn(*(a if isinstance(a, tf.Tensor) else np.asarray(a, dtype=np.float32)
                   if i < self.fixed else padded(np.asarray(a, dtype=np.float32), self.capacity)
                   for i, a in enumerate(arrays)), np.int32(n))


def padded(a: np.ndarray, steps: int) -> np.ndarray:
    """``a`` with zero rows appended up to ``steps`` rows along axis 0."""
    if a.shape[0] == steps:
        return a
    out = np.zeros((steps, *a.shape[1:]), dtype=a.dtype)
    out[:a.shape[0]] = a
    return out
