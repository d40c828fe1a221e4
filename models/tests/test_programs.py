"""One program per model across ops and range pairs (`benchmarks.suite.groups`,
`models.supervised`): each spec's record is the one it gets in its own group, within the
tolerance of vectorised training (`test_vectorised.py`: float32 rounding differs with the
number of replicas, in evaluation as in training)."""
import numpy as np
import pytest

from benchmarks import runner, suite
from models import registry

FRAMEWORKS = [pytest.param(fw, marks=pytest.mark.skipif(
    registry.framework_missing(fw) is not None, reason=f"{fw} not installed"))
    for fw in registry.FRAMEWORKS]
TINY = suite.Budget("tiny", steps=300, eval_interval=100, seeds=2, description="tests")
PAIRS = (((1.0, 2.0), (2.0, 6.0)), ((-2.0, 2.0), ((-6.0, -2.0), (2.0, 6.0))))


def _specs(framework, unit, ops=("add", "mul"), seeds=(0, 1), protocol="suite"):
    out = []
    for op in ops:
        for interpolation, extrapolation in PAIRS:
            out += suite.expand(["static_arithmetic"], [unit], [framework], list(seeds), TINY,
                                {"op": [op], "input_size": [2], "eval_size": [400],
                                 "interpolation_range": [interpolation],
                                 "extrapolation_range": [extrapolation],
                                 "protocol": [protocol]})
    return out


def _curve(record):
    return np.array([record["curve"]["interpolation"], record["curve"]["extrapolation"]])


def test_one_program_per_model_across_ops_and_range_pairs():
    specs = _specs("torch", "nau") + _specs("torch", "nmu")
    programs = suite.groups(specs)
    assert sorted(len(p) for p in programs) == [8, 8]
    for program in programs:
        assert len({s.unit for s in program}) == 1
        configs = [s.params["op"] + str(s.params["interpolation_range"]) for s in program]
        assert configs == sorted(configs, key=configs.index)  # a configuration is one block
    # common data: every replica reads one stream, so ranges cannot share a program
    common = [s.__class__(**{**s.__dict__, "common_data": True}) for s in specs]
    assert sorted(len(p) for p in suite.groups(common)) == [2] * 8
    assert [len(p) for p in suite.groups(_specs("torch", "nau"), max_replicas=3)] == [3, 3, 2]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("unit,ops,protocol", [
    ("nau", ("add", "mul"), "suite"), ("nmu", ("add", "mul"), "suite"),
    ("nalu", ("add", "mul"), "suite"),
    # [Primer]'s settings: per-op L1 weights (per replica in one program), clipping
    ("npu", ("mul", "div"), "primer"), ("inalu", ("add", "div"), "primer")])
def test_a_record_from_a_program_is_the_record_of_its_spec_alone(framework, unit, ops, protocol):
    specs = _specs(framework, unit, ops, protocol=protocol)
    [program] = suite.groups(specs)
    together = {r["id"]: r for r in runner.run_group(program)}
    alone = {}
    for spec in specs:
        if spec.id not in alone:
            group = [s for s in specs if s.group_key == spec.group_key]
            alone.update({r["id"]: r for r in runner.run_group(group)})
    assert together.keys() == alone.keys()
    for key, record in together.items():
        mine = alone[key]
        assert record["status"] == mine["status"] == "ok", record["reason"]
        np.testing.assert_allclose(_curve(record), _curve(mine), rtol=1e-4, atol=1e-7)
        for name in ("selected_step", "success", "threshold"):
            assert record["metrics"][name] == mine["metrics"][name], name
    # and the configurations really are different problems
    curves = [_curve(r)[1, -1] for r in together.values()]
    assert len(set(np.round(curves, 6))) > 4
