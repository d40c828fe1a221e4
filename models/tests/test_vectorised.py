"""Training R seeds as one program gives each seed the numbers of its own one-seed run."""
import numpy as np
import pytest

from benchmarks import runner, suite
from models import reference, registry

FRAMEWORKS = [pytest.param(fw, marks=pytest.mark.skipif(
    registry.framework_missing(fw) is not None, reason=f"{fw} not installed"))
    for fw in registry.FRAMEWORKS]
TINY = suite.Budget("tiny", steps=300, eval_interval=100, seeds=4, description="tests")
# NALU's training amplifies 1-ulp differences (a transcendental op that falls in a SIMD
# lane in the batched run falls in the scalar tail of the one-seed run), so its replicas
# are compared over fewer steps; the data and every other op are identical bit for bit.
SHORT = suite.Budget("short", steps=40, eval_interval=10, seeds=4, description="tests")
CHAOTIC = {"nalu", "nalu_sep", "gnalu"}  # input-dependent gates, as NALU
PARAMS = {"op": ["add"], "input_size": [10], "eval_size": [500]}


def _records(framework, model, seeds, common_data=False):
    budget = SHORT if model in CHAOTIC else TINY
    specs = suite.expand(["static_arithmetic"], [model], [framework], seeds, budget, PARAMS,
                         common_data=common_data)
    return {r["seed"]: r for r in runner.run_group(specs)}


def _curve(record):
    return np.array([record["curve"]["interpolation"], record["curve"]["extrapolation"]])


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("unit", list(reference.UNITS))
def test_replica_matches_one_seed_run(framework, unit):
    group = _records(framework, unit, [0, 1, 2, 3])
    alone = _records(framework, unit, [2])
    assert {r["status"] for r in group.values()} <= {"ok", "diverged"}
    rtol = 1e-3 if unit in CHAOTIC else 1e-4
    np.testing.assert_allclose(_curve(group[2]), _curve(alone[2]), rtol=rtol, atol=1e-6)
    assert group[2]["metrics"]["selected_step"] == alone[2]["metrics"]["selected_step"]
    # and the replicas really are different runs
    assert not np.allclose(_curve(group[0]), _curve(group[2]))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_diverging_replica_leaves_the_others_alone(framework, monkeypatch):
    healthy = _records(framework, "linear", [0, 2])
    original = registry.init_params

    def explosive(unit, n_in, n_out, seeds, init=None):
        params = original(unit, n_in, n_out, seeds, init)
        for r, key in enumerate(seeds):
            if key[0] == 1:  # seed 1: weights so large that the squared error overflows
                params["W"][r] = 1e19
        return params

    monkeypatch.setattr(registry, "init_params", explosive)
    group = _records(framework, "linear", [0, 1, 2])
    assert group[1]["status"] == "diverged"
    assert group[1]["metrics"]["success"] is False
    assert "non-finite" in group[1]["reason"]
    for seed in (0, 2):
        assert group[seed]["status"] == "ok"
        np.testing.assert_allclose(_curve(group[seed]), _curve(healthy[seed]), rtol=1e-4)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_common_data_is_marked_and_differs(framework):
    own = _records(framework, "nau", [0, 1])
    common = _records(framework, "nau", [0, 1], common_data=True)
    assert all(r["common_data"] for r in common.values())
    assert not any(r["common_data"] for r in own.values())
    assert common[0]["id"] != own[0]["id"]
    assert not np.allclose(_curve(common[0]), _curve(own[0]))
