"""The supervised loop's schedule: chunk sizes, and data that does not depend on them."""
from __future__ import annotations

import numpy as np

from models import supervised


class Recorder:
    """A trainer that trains nothing and keeps every chunk it is given."""

    def __init__(self):
        self.chunks, self.reserved = [], None

    def reserve(self, steps):
        self.reserved = steps

    def train(self, xs, ys, lams):
        self.chunks.append(xs.copy())

    def errors(self, x, y, chunk=2000):
        return np.zeros(y.shape[0])

    def params(self):
        return [{"W": np.zeros((1, 1, 1))}]


def _fit(chunk_bytes, steps=2500):
    rng = np.random.default_rng(0)

    def batches(n):
        return rng.random((n, 1, 4, 3), dtype=np.float32), np.zeros((n, 1, 4, 1), np.float32)

    trainer = Recorder()
    cfg = supervised.TrainConfig(steps=steps, eval_interval=1000, chunk_bytes=chunk_bytes)
    supervised.fit(trainer, ["nau"], batches, {"interpolation": (np.zeros((2, 3)),
                                                                 np.zeros((1, 2, 1)))},
                   cfg, replicas=1, bytes_per_step=4 * 4 * 4)
    return trainer


def test_first_chunk_is_short_and_the_longest_is_reserved():
    trainer = _fit(chunk_bytes=64 * 400)  # 400 steps per chunk
    sizes = [len(c) for c in trainer.chunks]
    assert sizes[0] == -(-400 // supervised.FIRST_CHUNK_DIVISOR) == 25
    assert sizes[1] == 400 and sum(sizes) == 2500
    assert trainer.reserved == max(sizes) == 400
    # no chunk crosses an evaluation
    ends = np.cumsum(sizes)
    assert {1000, 2000, 2500} <= set(ends.tolist())


def test_chunking_does_not_change_the_data():
    a = np.concatenate(_fit(chunk_bytes=64 * 400).chunks)
    b = np.concatenate(_fit(chunk_bytes=64 * 37).chunks)
    assert a.shape == b.shape == (2500, 1, 4, 3)
    np.testing.assert_array_equal(a, b)
