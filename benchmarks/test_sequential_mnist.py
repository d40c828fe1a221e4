"""`pytest benchmarks/`: [NAU]'s sequential MNIST (sum) at the smoke budget, one command:
the nine solved-accumulator reference runs, then the NAU (R_z 1) and the LSTM scored
against their thresholds.

What the smoke budget shows reliably (scikit-learn's 8x8 digits, 200 steps): the
reference runs' CNN learns the digits' scale (validation and test MSE far below the
untrained network's), so does the NAU accumulator; [NAU]'s LSTM (hidden size 1, |h| < 1)
cannot output a running sum and stays near its untrained error. Whether a model succeeds
at length 1000 needs far more steps (docs/sequential-mnist-protocol.md).
"""
from __future__ import annotations

import json

from benchmarks import cli

LENGTHS = (1, 10, 100)


def test_sequential_mnist(benchmark, bench_store, framework, monkeypatch, tmp_path):
    monkeypatch.delenv("ARITHBENCH_MNIST", raising=False)
    results = tmp_path / "runs"
    args = ["run", "--tasks", "sequential_mnist", "--budget", "smoke", "--frameworks",
            framework, "--param", "operation=sum", "--param", "source=sklearn", "--param",
            f"test_lengths={','.join(map(str, LENGTHS))}", "--quiet", "--results", str(results)]
    code = benchmark.pedantic(cli.main, args=(args,), rounds=1, iterations=1)
    records = [json.loads(p.read_text()) for p in results.glob("*.json")]
    for record in records:
        bench_store.write(record)
    assert code == 0 and len(records) == 11, [r.get("reason") for r in records]
    refs = [r for r in records if r["task_params"]["simplification"] == "solved-accumulator"]
    runs = {r["unit"]: r for r in records if r not in refs}
    assert len(refs) == 9 and set(runs) == {"nau", "lstm"}
    assert runs["nau"]["task_params"]["regulariser_z"] == 1.0
    for record in records:
        assert record["status"] == "ok", record["reason"]
        assert list(record["curve"])[:2] == ["step", "validation"]
        assert record["curve"]["step"][-1] == record["steps"]
        assert record["metrics"]["per_length"]["length"] == list(LENGTHS)
    for record in [*refs, runs["nau"]]:  # the CNN learned the digits' scale
        assert record["metrics"]["interpolation_normalised"] < 15, record["metrics"]
    assert runs["lstm"]["metrics"]["interpolation_normalised"] > 50  # bounded by |h| < 1
    for record in runs.values():
        m = record["metrics"]
        assert m["scored"] is True and m["reference_runs"] == 9
        assert m["success"] is (m["mse_100"] < m["threshold_100"])
    benchmark.extra_info.update(framework=framework, task="sequential_mnist", runs=len(records),
                                nau_mse_10=runs["nau"]["metrics"]["mse_10"],
                                threshold_10=runs["nau"]["metrics"]["threshold_10"])
