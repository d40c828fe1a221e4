"""`pytest benchmarks/`: MNIST counting and addition at the smoke budget.

One seed per case (the seeds of the digit tasks train one after another). What the smoke
budget shows reliably: on counting an LSTM core learns something at the training length
(its MSE at length 10 beats the best constant's); on addition (one sum per sequence, far
less signal) it learns the scale of the answer (10x better than untrained, no worse
than the best constant); every record says which digits it was trained on. Whether a
core extrapolates to 100 and 1000 needs the quick budget or more (docs/results.md).
"""
from __future__ import annotations

import pytest

from benchmarks import runner, suite

SMOKE = suite.BUDGETS["smoke"]
TASKS = ["mnist_counting", "mnist_addition"]


@pytest.mark.parametrize("task", TASKS)
def test_mnist(benchmark, bench_store, framework, task, monkeypatch):
    monkeypatch.delenv("ARITHBENCH_MNIST", raising=False)
    specs = suite.expand([task], ["lstm"], [framework], [0], SMOKE, {"source": ["sklearn"]})
    records = benchmark.pedantic(runner.run_group, args=(specs,), rounds=1, iterations=1)
    for record in records:
        bench_store.write(record)
    statuses = {r["status"] for r in records}
    if statuses == {"skipped"}:
        pytest.skip(records[0]["reason"])
    assert "error" not in statuses, records[0].get("traceback")
    for record in records:
        m = record["metrics"]
        assert (m["digits_source"], m["digits_train"], m["digits_test"]) == ("sklearn", 1257, 540)
        assert set(m["per_length"]["length"]) == {10, 100, 1000}
        if record["status"] == "ok":
            assert record["curve"]["step"][0] == 0
            assert record["curve"]["step"][-1] == record["steps"]
    lstm = records[0]["metrics"]
    benchmark.extra_info.update(framework=framework, task=task, model="lstm",
                                steps=specs[0].steps, mse_10=lstm["mse_10"],
                                baseline_mse_10=lstm["baseline_mse_10"])
    if task == "mnist_counting":  # ten counts per sequence: enough signal to learn classes
        assert lstm["mse_10"] < 0.8 * lstm["baseline_mse_10"], (framework, lstm["mse_10"])
    else:  # one sum per sequence: at this budget the LSTM learns the scale, not the digits
        untrained = records[0]["curve"]["interpolation"][0]
        assert lstm["mse_10"] < min(untrained / 10, 1.2 * lstm["baseline_mse_10"]), (
            framework, lstm["mse_10"], untrained)
