"""`pytest benchmarks/`: the recurrent arithmetic task at the smoke budget.

Each case trains its seeds as one vectorised group (timed by pytest-benchmark) and
asserts what holds reliably after 1,000 steps: with [NAU]'s two hidden units the LSTM
cannot even represent the running sums (its hidden state is bounded by 1), so it stays
near the predict-the-mean error on the training length and never succeeds at length
1000; the NAU cell fits the training length far better than the LSTM does. Whether an
arithmetic cell *extrapolates* to length 1000 takes far longer training (docs/tasks.md,
"Recurrent arithmetic"), so it is not asserted here.
"""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks import runner, suite
from tasks.recurrent_arithmetic import RecurrentArithmetic

SMOKE = suite.BUDGETS["smoke"].for_task(RecurrentArithmetic)
MEAN_MSE = 10 * 6 / 12  # variance of a+b: 10 steps of x_o + 2 x_(o+1) + x_(o+2), x ~ U[1,2]


def _run(framework, model, bench_store, benchmark=None):
    specs = suite.expand(["recurrent_arithmetic"], [model], [framework],
                         list(range(SMOKE.seeds)), suite.BUDGETS["smoke"], {"op": ["add"]})
    if benchmark is None:
        records = runner.run_group(specs)
    else:
        records = benchmark.pedantic(runner.run_group, args=(specs,), rounds=1, iterations=1)
    for record in records:
        bench_store.write(record)
    statuses = {r["status"] for r in records}
    if statuses == {"skipped"}:
        pytest.skip(records[0]["reason"])
    assert "error" not in statuses, records[0].get("traceback")
    return records


def _median(records, key):
    return float(np.median([r["metrics"][key] for r in records]))


def test_recurrent_arithmetic(benchmark, bench_store, framework):
    lstm = _run(framework, "lstm", bench_store, benchmark)
    nau = _run(framework, "nau", bench_store)
    for records in (lstm, nau):
        for r in records:
            assert {"mse_10", "mse_100", "mse_1000", "success_1000"} <= set(r["metrics"])
            assert r["metrics"]["headline_length"] == 1000
    benchmark.extra_info.update(
        framework=framework, seeds=len(lstm), steps=SMOKE.steps,
        lstm_interpolation_mse=_median(lstm, "interpolation_mse"),
        nau_interpolation_mse=_median(nau, "interpolation_mse"),
        seed_steps_per_s=lstm[0]["seed_steps_per_s"])
    assert not any(r["metrics"]["success"] for r in lstm)  # never at length 1000
    assert _median(lstm, "interpolation_mse") > 0.5 * MEAN_MSE
    assert _median(nau, "interpolation_mse") < 0.5 * _median(lstm, "interpolation_mse")
