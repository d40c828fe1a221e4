"""`pytest benchmarks/`: text to number at the smoke budget, English and German.

Each case trains its seeds as one vectorised group (timed by pytest-benchmark). What
holds reliably at this budget: an LSTM with a linear output reads numbers it never
saw (the test numbers inside the training hundreds) with an MAE far below that of
predicting the training mean (about 200). The extrapolation set does not: see
docs/results.md for the quick budget.
"""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks import runner, suite
from tasks.text_to_number import TextToNumber

SMOKE = suite.BUDGETS["smoke"]
CASES = [("en", "linear"), ("de", "linear")]


@pytest.mark.parametrize("language,model", CASES, ids=[f"{lang}-{m}" for lang, m in CASES])
def test_text_to_number(benchmark, bench_store, framework, language, model):
    task = TextToNumber(language=language)
    budget = SMOKE.for_task(TextToNumber)
    specs = suite.expand(["text_to_number"], [model], [framework], list(range(budget.seeds)),
                         SMOKE, {"language": [language]})
    records = benchmark.pedantic(runner.run_group, args=(specs,), rounds=1, iterations=1)
    for record in records:
        bench_store.write(record)
    statuses = {r["status"] for r in records}
    if statuses == {"skipped"}:
        pytest.skip(records[0]["reason"])
    assert "error" not in statuses, records[0].get("traceback")
    split = task.split()
    mean_mae = float(np.mean(np.abs(split["interpolation"] - split["train"].mean())))
    maes = [r["metrics"]["mae_interpolation"] for r in records]
    benchmark.extra_info.update(framework=framework, language=language, model=model,
                                seeds=len(records), steps=budget.steps, mae_interpolation=maes,
                                mean_predictor_mae=mean_mae,
                                seed_steps_per_s=records[0]["seed_steps_per_s"])
    assert statuses == {"ok"}
    assert max(maes) < 0.25 * mean_mae, f"{model} {language} {framework}: MAE {maes}"
