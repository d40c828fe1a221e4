"""Conformance over the registry: what every registered unit must do, with no test of its own.

For each unit of `models.reference.UNITS`, in both frameworks: a class exists, it trains
through the runner on the static task (the [Primer] single-module variant, on a range
that includes 0 and negatives) at a tiny budget and gives an ``ok`` or ``diverged``
record - never ``error`` - with the metrics every task promises, and its weights
round-trip (get_params -> set_params -> the same output). A unit registered tomorrow is
in CASES the day it is registered.

Recurrent cells join through CASES: one (task, model, task parameters) per cell on the
recurrent task, once it is registered (see ``_cell_cases``).
"""
from __future__ import annotations

import numpy as np
import pytest

import tasks
from benchmarks import runner, suite
from models import reference, registry

FRAMEWORKS = [pytest.param(fw, marks=pytest.mark.skipif(
    registry.framework_missing(fw) is not None, reason=f"{fw} not installed"))
    for fw in registry.FRAMEWORKS]
# A few steps and evaluations: enough to reach the regulariser's ramp (schedules scale
# with steps) and model selection, small enough to run every unit in CI.
TINY = suite.Budget("conformance", steps=60, eval_interval=20, seeds=2,
                    description="conformance over the registry", lr=5e-3)
STATIC = {"op": ["mul"], "input_size": [2], "eval_size": [256],
          "interpolation_range": [(-2.0, 2.0)],
          "extrapolation_range": [((-6.0, -2.0), (2.0, 6.0))]}
METRICS = {"success", "interpolation_mse", "extrapolation_mse"}


def _unit_cases():
    return [pytest.param("static_arithmetic", unit, STATIC, id=f"unit-{unit}")
            for unit in reference.UNITS]


RECURRENT = {"op": ["add"], "test_lengths": [(30,)], "eval_size": [64]}


def _cell_cases():
    """Every registered cell on the recurrent task (bare name: CELL-CELL for an arithmetic
    cell, CELL-linear otherwise; see tasks/recurrent_arithmetic.py)."""
    return [pytest.param("recurrent_arithmetic", cell, RECURRENT, id=f"cell-{cell}")
            for cell in reference.CELLS]


CASES = _unit_cases() + _cell_cases()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_registered_unit_has_a_class(framework):
    classes = registry.framework_module(framework, "units").CLASSES
    assert list(classes) == list(reference.UNITS), (
        f"{framework}: units without a class: {sorted(set(reference.UNITS) - set(classes))}; "
        f"classes without a reference entry: {sorted(set(classes) - set(reference.UNITS))}")
    for name, cls in classes.items():
        assert cls.name == name


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("task,model,params", CASES)
def test_trains_through_the_runner(task, model, params, framework):
    specs = suite.expand([task], [model], [framework], [0, 1], TINY, params)
    records = runner.run_group(specs)
    assert len(records) == 2
    for record in records:
        assert record["status"] in ("ok", "diverged"), (record["status"], record["reason"],
                                                        record.get("traceback"))
        assert METRICS <= set(record["metrics"])
        assert record["curve"]["step"][-1] == TINY.steps
        if record["status"] == "diverged":
            assert record["metrics"]["success"] is False and record["reason"]
    assert tasks.get(task).name == records[0]["task"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("unit", list(reference.UNITS))
def test_weights_round_trip(unit, framework):
    n_in, n_out = 3, 2
    x = np.array([[0.0, -1.5, 2.0], [3.0, 0.5, -0.25], [-20.0, 10.0, 0.0]], dtype=np.float32)
    first = registry.build(unit, framework, n_in, n_out, seed=3, replicas=2)
    params = first.get_params()
    assert set(params) == set(reference.UNITS[unit].params)
    second = registry.build(unit, framework, n_in, n_out, seed=40, replicas=2)
    second.set_params(params)
    for key, value in second.get_params().items():
        np.testing.assert_array_equal(value, params[key], err_msg=key)
    np.testing.assert_array_equal(_forward(second, x, framework), _forward(first, x, framework))


def _forward(layer, x, framework):
    if framework == "torch":
        import torch

        return layer(torch.as_tensor(x)).detach().numpy()
    import tensorflow as tf

    return layer(tf.constant(x)).numpy()



@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_registered_cell_has_a_class(framework):
    classes = registry.framework_module(framework, "cells").CLASSES
    assert list(classes) == list(reference.CELLS)
    for name, cls in classes.items():
        assert cls.name == name


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("cell", list(reference.CELLS))
def test_cell_weights_round_trip(cell, framework):
    module = registry.framework_module(framework, "cells")
    first = module.make(cell, registry.init_cell_params(cell, 3, 2, [3, 4]))
    params = first.get_params()
    assert set(params) == set(reference.CELLS[cell].params)
    second = module.make(cell, registry.init_cell_params(cell, 3, 2, [40, 41]))
    second.set_params(params)
    for key, value in second.get_params().items():
        np.testing.assert_array_equal(value, params[key], err_msg=key)
    x = np.array([[0.0, -1.5, 2.0], [3.0, 0.5, -0.25], [-20.0, 10.0, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(_run_cell(second, x, framework), _run_cell(first, x, framework))


def _run_cell(cell, x, framework):
    """h after three steps of the same input."""
    if framework == "torch":
        import torch

        xt, state = torch.as_tensor(x), cell.zero_state(len(x))
        for _ in range(3):
            h, state = cell(xt, state)
        return h.detach().numpy()
    import tensorflow as tf

    xt, state = tf.constant(x), cell.zero_state(len(x))
    for _ in range(3):
        h, state = cell(xt, state)
    return h.numpy()
