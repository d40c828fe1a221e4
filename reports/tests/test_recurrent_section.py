"""The recurrent arithmetic section: per-length success and MSE from the flat metrics."""
import math

import pandas as pd

from reports import frame
from reports.sections import recurrent_arithmetic as section
from reports.tests.conftest import record


def _records():
    out = []
    for seed in range(3):
        for unit, mse in (("nau", [1e-6, 1e-3, 1e-1]), ("lstm", [5.0, 3e5, math.inf])):
            metrics = {f"mse_{L}": v for L, v in zip((10, 100, 1000), mse)}
            metrics |= {f"success_{L}": unit == "nau" and (L < 1000 or seed == 0)
                        for L in (10, 100, 1000)}
            metrics |= {f"normalised_{L}": 1.0 for L in (10, 100, 1000)}
            rec = record(seed=seed, unit=unit, **metrics)
            rec["task"] = "recurrent_arithmetic"
            out.append(rec)
    return out


def test_per_length_table_and_figure():
    df = frame.frame(_records())
    assert section.lengths(df) == [10, 100, 1000]
    table = section.per_length(df)
    nau = table[table["unit"] == "nau"].set_index("length")
    assert nau.loc[100, "success"] == 1.0 and nau.loc[1000, "success"] == 1 / 3
    assert 0 < nau.loc[1000, "success_low"] < 1 / 3 < nau.loc[1000, "success_high"]
    assert nau.loc[1000, "mse"] == 0.1
    lstm = table[table["unit"] == "lstm"].set_index("length")
    assert lstm.loc[1000, "mse"] == math.inf and lstm.loc[1000, "success"] == 0
    out = section.section("recurrent_arithmetic", df, None)
    captions = [f["caption"] for f in out["figures"]]
    assert any("sequence length" in c for c in captions)
    per = out["tables"][-1]
    assert "success L=1000" in per["columns"] and len(per["rows"]) == 2


def test_nothing_to_draw_without_length_metrics():
    assert section.length_figure(pd.DataFrame()) is None
    assert section.lengths(pd.DataFrame({"mse": [1.0]})) == []
