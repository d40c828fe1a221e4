"""`pytest benchmarks/`: [Primer]'s single-module benchmark (`--budget primer`) at a reduced budget.

The budget keeps its matrix machinery (input size 2, the range pair picked from
[Primer]'s nine, `protocol=primer`: each unit's [Primer] settings) with 5,000 steps and 6
seeds instead of 50,000 and 25. Each case asserts what holds reliably there (two cases: CI
time); the full budget's run is in docs/results.md.
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from benchmarks import runner, suite

REDUCED = replace(suite.BUDGETS["primer"], steps=5_000, eval_interval=500, seeds=6)
# (op, interpolation range, unit, lowest success rate, highest success rate)
CASES = [
    ("mul", (1.0, 2.0), "nmu", 0.8, 1.0),  # NMU multiplies them
    # NALU's multiplicative path is exp(...) > 0: a product of mixed signs is out of reach,
    # and the run is recorded as a failure, not refused
    ("mul", (-2.0, 2.0), "nalu", 0.0, 0.0),
]


@pytest.mark.parametrize("op,interpolation,unit,low,high", CASES,
                         ids=[f"{o}-{lo:g},{hi:g}-{u}" for o, (lo, hi), u, *_ in CASES])
def test_primer(benchmark, bench_store, framework, op, interpolation, unit, low, high):
    specs = suite.expand(["static_arithmetic"], [unit], [framework], list(range(REDUCED.seeds)),
                         REDUCED, {"op": [op], "interpolation_range": [interpolation]})
    assert {s.params["input_size"] for s in specs} == {2}
    records = benchmark.pedantic(runner.run_group, args=(specs,), rounds=1, iterations=1)
    for record in records:
        bench_store.write(record)
    statuses = {r["status"] for r in records}
    if statuses == {"skipped"}:
        pytest.skip(records[0]["reason"])
    assert "error" not in statuses, records[0].get("traceback")
    rate = sum(bool(r.get("metrics", {}).get("success")) for r in records) / len(records)
    benchmark.extra_info.update(framework=framework, op=op, unit=unit, seeds=len(records),
                                steps=REDUCED.steps, success_rate=rate,
                                interpolation_range=list(interpolation),
                                seed_steps_per_s=records[0]["seed_steps_per_s"])
    assert low <= rate <= high, f"{unit} {op} on {interpolation} {framework}: success {rate:.0%}"
