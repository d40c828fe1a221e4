"""`pytest benchmarks/`: the static arithmetic matrix at the smoke budget.

Each case trains its seeds as one vectorised group (timed by pytest-benchmark) and
asserts a qualitative published result [NAU] that holds at this budget; the rates
measured at this budget are in docs/results.md.
"""
from __future__ import annotations

import pytest

from benchmarks import runner, suite

SMOKE = suite.BUDGETS["smoke"]
# (op, model, lowest success rate, highest success rate): what [NAU] reports and the
# smoke budget reproduces reliably.
CASES = [
    ("sub", "nau", 0.75, 1.0),  # NAU learns a-b and extrapolates in most seeds
    ("sub", "nac", 0.75, 1.0),  # so does NAC+
    ("sub", "linear", 0.0, 0.5),  # a linear layer rarely does (7% in [NAU])
    ("add", "relu6", 0.0, 0.0),  # an MLP with ReLU6 does not extrapolate a+b
    ("add", "nalu", 0.0, 0.25),  # NALU rarely does (14% in [NAU])
]


@pytest.mark.parametrize("op,model,low,high", CASES, ids=[f"{o}-{m}" for o, m, *_ in CASES])
def test_static_arithmetic(benchmark, bench_store, framework, op, model, low, high):
    specs = suite.expand(["static_arithmetic"], [model], [framework],
                         list(range(SMOKE.seeds)), SMOKE, {"op": [op]})
    records = benchmark.pedantic(runner.run_group, args=(specs,), rounds=1, iterations=1)
    for record in records:
        bench_store.write(record)
    statuses = {r["status"] for r in records}
    if statuses == {"skipped"}:
        pytest.skip(records[0]["reason"])
    assert "error" not in statuses, records[0].get("traceback")
    rate = sum(bool(r.get("metrics", {}).get("success")) for r in records) / len(records)
    benchmark.extra_info.update(framework=framework, op=op, model=model, seeds=len(records),
                                steps=SMOKE.steps, success_rate=rate,
                                seed_steps_per_s=records[0]["seed_steps_per_s"])
    assert low <= rate <= high, f"{model} {op} {framework}: success {rate:.0%}"
