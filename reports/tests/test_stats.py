"""Wilson intervals against the textbook formula; summary's failure accounting."""
from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy.stats import norm

from reports import stats


def wilson_by_hand(k, n, alpha=0.05):
    """Wilson (1927) score interval, written out as an independent check."""
    z, p = norm.ppf(1 - alpha / 2), k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_wilson_matches_formula():
    low, high = stats.wilson(8, 10)
    assert (low, high) == pytest.approx(wilson_by_hand(8, 10), abs=1e-12)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert stats.wilson(3, 7, alpha=0.1) == pytest.approx(wilson_by_hand(3, 7, alpha=0.1))


def test_wilson_edges():
    assert stats.wilson(0, 12)[0] == pytest.approx(0, abs=1e-15)
    assert stats.wilson(0, 12)[1] > 0
    assert stats.wilson(12, 12)[1] == pytest.approx(1)
    assert all(math.isnan(v) for v in stats.wilson(0, 0))


def runs(unit, outcomes):
    """Rows of the tidy frame: (status, success, solved_at, sparsity_error) per run."""
    return [{"task": "t", "param_op": "add", "unit": unit, "framework": "torch",
             "status": st, "success": ok, "solved_at": solved, "sparsity_error": sp,
             "interpolation_mse": i, "extrapolation_mse": 10.0 * i}
            for i, (st, ok, solved, sp) in enumerate(outcomes, start=1)]


def test_summary_counts_diverged_as_failure():
    df = pd.DataFrame(
        runs("nau", [("ok", True, 1000, 0.1), ("ok", True, 3000, 0.3), ("ok", False, None, 9.0),
                     ("diverged", None, None, None), ("skipped", None, None, None)])
        + runs("nmu", [("diverged", True, 500, 0.0)]))  # even a stray success flag loses
    df["success"] = df["success"].astype("boolean")
    out = stats.summary(df).set_index("unit")
    assert list(out.columns[:3]) == ["task", "param_op", "framework"]
    nau = out.loc["nau"]
    assert nau["runs"] == 4 and nau["diverged"] == 1  # the skipped run is not a run
    assert nau["success"] == pytest.approx(0.5)
    assert (nau["success_low"], nau["success_high"]) == pytest.approx(stats.wilson(2, 4))
    assert nau["solved_at"] == pytest.approx(2000)  # median over solved runs only
    assert nau["sparsity_error"] == pytest.approx(0.2)  # over successful runs only
    assert nau["interpolation_mse"] == pytest.approx(2.5)
    nmu = out.loc["nmu"]
    assert nmu["runs"] == 1 and nmu["success"] == 0 and nmu["diverged"] == 1
    assert math.isnan(nmu["sparsity_error"])


def test_summary_without_op():
    df = pd.DataFrame(runs("nau", [("ok", True, 1000, 0.1), ("ok", False, None, 1.0)]))
    out = stats.summary(df.drop(columns="param_op"))
    assert list(out.columns[:3]) == ["task", "unit", "framework"]
    assert out["runs"].tolist() == [2] and out["success"].tolist() == [0.5]
    df.loc[0, "param_op"] = None  # a task without an op next to one with
    assert stats.summary(df)["runs"].tolist() == [1, 1]
    whole = stats.summary(df, by=())
    assert whole["runs"].tolist() == [2] and "task" not in whole


def test_status_counts_keeps_reasons():
    df = pd.DataFrame({"status": ["ok", "error", "skipped", "ok", "skipped", "diverged"],
                       "reason": ["", "boom", "no tf", "", "no tf", "non-finite at 3"]})
    out = stats.status_counts(df)
    assert out.to_dict("records") == [
        {"status": "ok", "reason": "", "count": 2},
        {"status": "diverged", "reason": "", "count": 1},
        {"status": "error", "reason": "boom", "count": 1},
        {"status": "skipped", "reason": "no tf", "count": 2}]
