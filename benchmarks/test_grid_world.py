"""`pytest benchmarks/`: grid-world timing at the smoke budget.

The plain LSTM agent trains for the smoke budget (timed by pytest-benchmark); the
qualitative result that holds reliably there: the greedy agent arrives on time on the
training range far more often than a random policy (about 2% of episodes). The rates
measured at each budget are in docs/results.md.
"""
from __future__ import annotations

import pytest

from benchmarks import runner, suite
from tasks.grid_world import GridWorld

SMOKE = suite.BUDGETS["smoke"]


def test_grid_world(benchmark, bench_store, framework):
    budget = SMOKE.for_task(GridWorld)
    specs = suite.expand(["grid_world"], ["lstm"], [framework], list(range(budget.seeds)), SMOKE)
    records = benchmark.pedantic(runner.run_group, args=(specs,), rounds=1, iterations=1)
    for record in records:
        bench_store.write(record)
    statuses = {r["status"] for r in records}
    if statuses == {"skipped"}:
        pytest.skip(records[0]["reason"])
    assert "error" not in statuses, records[0].get("traceback")
    for record in records:
        m = record["metrics"]
        benchmark.extra_info.update(framework=framework, model="lstm", steps=budget.steps,
                                    train_success=m["train_success"],
                                    test_success=m["test_success"], reach=m["reach"],
                                    seed_steps_per_s=record["seed_steps_per_s"])
        assert m["train_success"] > m["random_success"] + 0.2, m
