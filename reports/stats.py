"""Success rates with Wilson intervals and per-configuration medians: what a report states."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact, mannwhitneyu
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from benchmarks.records import FINAL, STATUSES

BY = ("task", "param_op", "unit", "framework")
SUMMARY_COLUMNS = ("runs", "success", "success_low", "success_high", "interpolation_mse",
                   "extrapolation_mse", "interpolation_normalised", "extrapolation_normalised",
                   "solved_at", "sparsity_error", "diverged")
_METRICS = ("success", "interpolation_mse", "extrapolation_mse", "interpolation_normalised",
            "extrapolation_normalised", "solved_at", "sparsity_error")
# what ranks models: success first, then the median normalised extrapolation error (which
# separates models that all fail, or all succeed), then the median extrapolation MSE
RANK = (("success", False), ("extrapolation_normalised", True), ("extrapolation_mse", True))


def wilson(successes, n, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval: sane at 0/n and n/n, where the normal interval collapses."""
    if n == 0:
        return math.nan, math.nan
    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return float(low), float(high)


def summary(df: pd.DataFrame, by: Sequence[str] = BY) -> pd.DataFrame:
    """Per group of finished runs (ok or diverged; diverged is a failure): rate, CI, medians
    (of the MSEs and normalised errors over every finished run; NaN ones left out)."""
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
                      interpolation_normalised=("interpolation_normalised", "median"),
                      extrapolation_normalised=("extrapolation_normalised", "median"),
                      solved_at=("_solved", "median"), sparsity_error=("_sparsity", "median"),
                      diverged=("_diverged", "sum"))
    out = out.reset_index(drop=not keys)
    out["success"] = out["_won"] / out["runs"]
    if len(out):
        out["success_low"], out["success_high"] = proportion_confint(
            out["_won"], out["runs"], alpha=0.05, method="wilson")
    return out.reindex(columns=[*keys, *SUMMARY_COLUMNS])


def ranked(table: pd.DataFrame) -> pd.DataFrame:
    """A `summary` table best first (`RANK`; a missing median ranks last, ties keep their
    order)."""
    keys = [k for k, _ in RANK if k in table]
    return table.sort_values(keys, ascending=[up for k, up in RANK if k in table],
                             kind="stable", na_position="last")


def status_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Runs per status; error and skipped runs split by reason, since the reason is the news."""
    explained = df["status"].isin(("error", "skipped"))
    reason = df["reason"].fillna("").where(explained, "") if "reason" in df else ""
    counts = (df.assign(reason=reason).groupby(["status", "reason"], sort=False).size()
              .rename("count").reset_index())
    order = counts["status"].map({s: i for i, s in enumerate(STATUSES)}).fillna(len(STATUSES))
    return (counts.assign(_order=order).sort_values(["_order", "count"], ascending=[True, False])
            .drop(columns="_order").reset_index(drop=True))


def fisher(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p of Fisher's exact test that k1/n1 and k2/n2 share one success rate;
    NaN when either side has no runs."""
    if n1 <= 0 or n2 <= 0:
        return math.nan
    return float(fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue)


def mann_whitney(a, b) -> float:
    """Two-sided p of the Mann-Whitney U test of a against b. A non-finite error (a diverged
    run) ranks as the worst; NaN when either side is empty, 1 when every value ties."""
    a, b = (np.nan_to_num(np.asarray(v, dtype=float), nan=np.inf, posinf=np.inf)
            for v in (a, b))
    if len(a) == 0 or len(b) == 0:
        return math.nan
    both = np.concatenate([a, b])
    if (both == both[0]).all():  # scipy divides by a zero variance here
        return 1.0
    finite = both[np.isfinite(both)]
    top = (finite.max() + 1) if len(finite) else 0.0  # inf breaks scipy's normal approximation
    a, b = np.where(np.isinf(a), top, a), np.where(np.isinf(b), top, b)
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down correction over the tests given; NaN (no test) stays NaN, uncounted."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    tested = ~np.isnan(p)
    if tested.any():
        out[tested] = multipletests(p[tested], method="holm")[1]
    return out
