"""Success rates with Wilson intervals and per-configuration medians: what a report states."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from benchmarks.spec import FINAL, STATUSES

BY = ("task", "param_op", "unit", "framework")
SUMMARY_COLUMNS = ("runs", "success", "success_low", "success_high", "interpolation_mse",
                   "extrapolation_mse", "solved_at", "sparsity_error", "diverged")
_METRICS = ("success", "interpolation_mse", "extrapolation_mse", "solved_at", "sparsity_error")


def wilson(successes, n, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval: sane at 0/n and n/n, where the normal interval collapses."""
    if n == 0:
        return math.nan, math.nan
    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return float(low), float(high)


def summary(df: pd.DataFrame, by: Sequence[str] = BY) -> pd.DataFrame:
    """Per group of finished runs (ok or diverged; diverged is a failure): rate, CI, medians."""
    keys = [k for k in by if k in df.columns]
    rows = df[df["status"].isin(FINAL)] if "status" in df else df.iloc[0:0]
    rows = rows.assign(**{m: np.nan for m in _METRICS if m not in rows})
    won = rows["status"].eq("ok") & rows["success"].astype("boolean").fillna(False)
    rows = rows.assign(_won=won.astype(bool), _diverged=rows["status"].eq("diverged"),
                       _sparsity=rows["sparsity_error"].astype(float).where(won.astype(bool)),
                       _solved=rows["solved_at"].astype(float), _one=0)
    grouped = rows.groupby(keys or "_one", dropna=False, sort=True)  # NaN op is a group too
    out = grouped.agg(runs=("status", "size"), _won=("_won", "sum"),
                      interpolation_mse=("interpolation_mse", "median"),
                      extrapolation_mse=("extrapolation_mse", "median"),
                      solved_at=("_solved", "median"), sparsity_error=("_sparsity", "median"),
                      diverged=("_diverged", "sum"))
    out = out.reset_index(drop=not keys)
    out["success"] = out["_won"] / out["runs"]
    if len(out):
        out["success_low"], out["success_high"] = proportion_confint(
            out["_won"], out["runs"], alpha=0.05, method="wilson")
    return out.reindex(columns=[*keys, *SUMMARY_COLUMNS])


def status_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Runs per status; error and skipped runs split by reason, since the reason is the news."""
    explained = df["status"].isin(("error", "skipped"))
    reason = df["reason"].fillna("").where(explained, "") if "reason" in df else ""
    counts = (df.assign(reason=reason).groupby(["status", "reason"], sort=False).size()
              .rename("count").reset_index())
    order = counts["status"].map({s: i for i, s in enumerate(STATUSES)}).fillna(len(STATUSES))
    return (counts.assign(_order=order).sort_values(["_order", "count"], ascending=[True, False])
            .drop(columns="_order").reset_index(drop=True))
