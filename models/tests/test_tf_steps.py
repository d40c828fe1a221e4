"""CompiledSteps: chunks of any length run exactly their own steps, from one trace."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from models.tf.steps import CompiledSteps  # noqa: E402
from models.tf.units import tf  # noqa: E402


@pytest.mark.parametrize("jit", [True, False])
def test_padded_steps_are_not_run(jit):
    count = tf.Variable(0.0)
    total = tf.Variable(0.0)

    def step(x, y):
        count.assign_add(1.0)
        total.assign_add(tf.reduce_sum(x) + tf.reduce_sum(y))

    steps = CompiledSteps(step, [tf.TensorSpec([None, 2], tf.float32),
                                 tf.TensorSpec([None], tf.float32)], jit_compile=jit)
    rng = np.random.default_rng(0)
    expected_count = expected_total = 0.0
    for n in (7, 3, 7, 1):  # the longest first, as the supervised loop's chunks come
        x, y = rng.uniform(1, 2, (n, 2)), rng.uniform(1, 2, n)
        steps(x, y)
        expected_count += n
        expected_total += x.astype(np.float32).sum() + y.astype(np.float32).sum()
        assert count.numpy() == expected_count
        np.testing.assert_allclose(total.numpy(), expected_total, rtol=1e-5)
    assert steps.capacity == 7 and steps.traces() == 1


def test_a_longer_chunk_grows_the_capacity():
    count = tf.Variable(0.0)
    steps = CompiledSteps(lambda x: count.assign_add(tf.reduce_sum(x)),
                          [tf.TensorSpec([None], tf.float32)])
    steps(np.ones(2))
    steps(np.ones(5))
    steps(np.ones(3))
    assert count.numpy() == 10.0
    assert steps.capacity == 5


def test_staged_chunks_run_only_their_own_steps():
    """Chunks staged ahead of time (padded tensors, `stage`) run their real steps, as
    numpy chunks do, from the same trace, even one staged before the capacity grew."""
    count = tf.Variable(0.0)
    total = tf.Variable(0.0)

    def step(x):
        count.assign_add(1.0)
        total.assign_add(tf.reduce_sum(x))

    steps = CompiledSteps(step, [tf.TensorSpec([None, 2], tf.float32)])
    steps.reserve(6)
    rng = np.random.default_rng(1)
    chunks = [rng.uniform(1, 2, (n, 2)) for n in (2, 6, 4)]
    staged = [steps.stage(x) for x in chunks]
    assert all(t.shape[0] == 6 for (t,) in staged)
    for x, (t,) in zip(chunks, staged):
        steps(t, steps=len(x))
    early = steps.stage(chunks[0])  # padded to 6, then a chunk of 8 grows the capacity
    longer = rng.uniform(1, 2, (8, 2))
    steps(longer)
    steps(*early, steps=2)
    assert count.numpy() == 2 + 6 + 4 + 8 + 2
    assert steps.capacity == 8 and steps.traces() == 1
    expected = sum(x.astype(np.float32).sum() for x in [*chunks, longer, chunks[0]])
    np.testing.assert_allclose(total.numpy(), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="steps=9"):
        steps(*early, steps=9)  # more steps than the staged rows
    assert count.numpy() == 22


def test_errors_with_a_padded_last_chunk_equal_one_chunk():
    from models import registry
    from models.tf.train import Trainer

    trainer = Trainer([("nalu", registry.init_params("nalu", 4, 1, range(3)))], lr=1e-3)
    rng = np.random.default_rng(2)
    x, y = rng.uniform(-2, 2, (7, 4)), rng.uniform(-2, 2, (3, 7, 1))
    whole = trainer.errors(x, y, chunk=100)
    np.testing.assert_allclose(trainer.errors(x, y, chunk=3), whole, rtol=1e-6)


def test_fit_compiles_once_with_its_short_first_chunk():
    """models.engine.fit starts with a short chunk and reserves the longest first, so
    the step loop is traced once for the whole run."""
    from benchmarks import runner, suite
    from models.tf.steps import CompiledSteps as Compiled

    traced = []
    original = Compiled.__call__

    def spy(self, *arrays, steps=None):
        traced.append(arrays[0].shape[0] if steps is None else steps)
        original(self, *arrays, steps=steps)
        spy.traces = self.traces()

    budget = suite.Budget("t", steps=250, eval_interval=100, seeds=2, description="test")
    specs = suite.expand(["static_arithmetic"], ["nac"], ["tf"], [0, 1], budget,
                         {"op": ["add"], "input_size": [10], "eval_size": [50]})
    Compiled.__call__ = spy
    try:
        records = runner.run_group(specs)
    finally:
        Compiled.__call__ = original
    assert all(r["status"] not in ("error", "skipped") for r in records)
    assert traced[0] < max(traced)  # the first chunk is the short one
    assert spy.traces == 1
