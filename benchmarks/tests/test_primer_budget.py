"""`--budget primer`: [Primer]'s matrix, the units' own learning rates, and bad input."""
from __future__ import annotations

import collections

import pytest

from benchmarks import suite
from models import primer, reference
from tasks.base import TaskError
from tasks.static_arithmetic import PRIMER_MATRIX, PRIMER_RANGES, StaticArithmetic

PRIMER = suite.BUDGETS["primer"]


def _expand(models=None, grid=None, seeds=(0,), frameworks=("torch",)):
    return suite.expand(["static_arithmetic"], models, list(frameworks), list(seeds), PRIMER,
                        grid or {})


def test_the_budget_is_the_protocol():
    assert (PRIMER.steps, PRIMER.seeds, PRIMER.lr, PRIMER.batch_size) == (50_000, 25, 1e-3, 128)
    assert len(PRIMER_RANGES) == 9 and set(PRIMER_MATRIX) == {"add", "sub", "mul", "div"}
    # the units [Primer]'s script runs, per op (SH), each with its settings (models.primer)
    assert {op: set(units) for op, units in PRIMER_MATRIX.items()} == {
        "add": {"nac", "nau", "nalu", "inalu", "gnalu"},
        "sub": {"nac", "nau", "nalu", "inalu", "gnalu"},
        "mul": {"nmu", "nacmul", "nalu", "npu", "realnpu", "inalu", "gnalu"},
        "div": {"nacmul", "nalu", "npu", "realnpu", "inalu", "gnalu"}}
    assert set().union(*PRIMER_MATRIX.values()) == set(primer.SETTINGS)
    assert set(primer.SETTINGS) <= set(reference.UNITS)
    specs = _expand()
    assert {s.params["protocol"] for s in specs} == {"primer"}
    assert len(specs) == 23 * 9  # 23 unit x op cells, nine range pairs


def test_full_matrix_counts_and_learning_rates():
    specs = _expand(seeds=range(25), frameworks=("torch", "tf"))
    groups = suite.groups(specs)
    per_fw = sum(len(units) for units in PRIMER_MATRIX.values()) * len(PRIMER_RANGES)
    assert len(specs) == 2 * per_fw * 25
    # one program per unit and framework, across its ops and the nine range pairs
    ops = collections.Counter(u for units in PRIMER_MATRIX.values() for u in units)
    assert sorted((g[0].unit, g[0].framework, len(g)) for g in groups) == sorted(
        (unit, fw, n * len(PRIMER_RANGES) * 25) for unit, n in ops.items()
        for fw in ("torch", "tf"))
    assert all(s.params["input_size"] == 2 and s.steps == 50_000 for s in specs)
    lrs = {s.unit: s.lr for s in specs}
    assert lrs.pop("npu") == lrs.pop("realnpu") == 5e-3  # [NPU]'s own lr
    assert set(lrs.values()) == {1e-3}
    ranges = collections.Counter(str(s.params["interpolation_range"]) for s in specs)
    assert len(ranges) == 9


def test_units_and_params_restrict_the_matrix():
    specs = _expand(["npu", "nalu"], {"op": ["mul"], "interpolation_range": [[-2, 2]]})
    assert [(s.unit, s.lr) for s in specs] == [("npu", 5e-3), ("nalu", 1e-3)]
    p = specs[0].params
    assert p["interpolation_range"] == [[-2.0, 2.0]]
    assert p["extrapolation_range"] == [[-6.0, -2.0], [2.0, 6.0]]
    own = _expand(["nmu"], {"op": ["mul"], "interpolation_range": [[1, 2]],
                            "extrapolation_range": [[2, 20]]})
    assert own[0].params["extrapolation_range"] == [[2.0, 20.0]]


def test_bad_input_is_refused_at_spec_time():
    with pytest.raises(TaskError, match="not one of"):
        _expand(["nmu"], {"interpolation_range": [[3, 4]]})
    with pytest.raises(TaskError, match="two layers"):
        _expand(["nau-nmu"], {"op": ["mul"]})
    with pytest.raises(suite.SuiteError, match="static_arithmetic only"):
        suite.expand(["grid_world"], None, ["torch"], [0], PRIMER)


def test_other_budgets_unchanged():
    quick = suite.BUDGETS["quick"]
    assert not quick.matrix and quick.lr_for("npu") == quick.lr
    task = StaticArithmetic(input_size=2)
    task.check_model("nmu")
    task.check_model("nmu-nmu")
    StaticArithmetic().check_model("nau-nmu")  # two layers are fine on the two-layer network


def test_memory_preflight_takes_the_primer_run_and_refuses_a_program_too_big(capsys):
    """Each program's estimate spans all its replicas: the full primer matrix fits this
    machine's limit, a throughput program of 10,000 seeds x 4 ops x 9 pairs does not."""
    from benchmarks import cli

    cli._preflight(_expand(seeds=range(25), frameworks=("torch", "tf")), 1024)  # no raise
    code = cli.main(["throughput", "--program", "--seeds", "10000", "--steps", "10",
                     "--ops", "add,sub,mul,div"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "360000 x eval_size" in err[0], err
