"""The text-to-number section: the base one, MAE per split for every output layer x
language x framework, the same as bars, and [NALU]'s qualitative claim beside it."""
from __future__ import annotations

import numpy as np
import pandas as pd

from reports import figures
from reports.html import base_section, figure, num

SPLITS = ("train", "validation", "test", "interpolation", "extrapolation")
CLAIM = ("[NALU] (exact cells not verified here) reports LSTM+NALU with a test MAE far below "
         "LSTM+Linear on the 169/200/630 split of 1..999. That split holds no hundreds out, so "
         "its test numbers are this run's interpolation numbers (test numbers inside the "
         "training hundreds; or run with extrapolation_hundreds=none); medians over seeds at "
         "this run's budget.")


def _keys(df: pd.DataFrame) -> list[str]:
    return [k for k in ("unit", "param_language", "framework") if k in df]


def mae_table(df: pd.DataFrame) -> dict | None:
    """Median over seeds of each split's MAE and the test accuracy (rounded value)."""
    cols = [f"mae_{s}" for s in SPLITS if f"mae_{s}" in df]
    if not cols:
        return None
    keys = _keys(df)
    acc = [c for c in ("accuracy_test", "accuracy_extrapolation") if c in df]
    rows = []
    for key, g in df.groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append([*map(str, key), int(len(g)),
                     *(num(g[c].astype(float).median()) for c in cols),
                     *(num(g[c].astype(float).median()) for c in acc)])
    names = {"unit": "output layer", "param_language": "language", "framework": "framework"}
    return {"op": "", "rows": rows, "numeric": (len(keys) + 1, len(rows[0])),
            "columns": [*(names[k] for k in keys), "runs",
                        *(f"MAE {c.removeprefix('mae_')} (median)" for c in cols),
                        *(f"accuracy {c.removeprefix('accuracy_')} (median)" for c in acc)]}


def mae_bars(df: pd.DataFrame) -> bytes | None:
    """Median MAE of the test numbers inside and beyond the training hundreds, per output
    layer and framework; one column of panels per language (log scale)."""
    parts = [s for s in ("interpolation", "extrapolation") if f"mae_{s}" in df]
    if not parts or df.empty:
        return None
    languages = sorted(df["param_language"].dropna().astype(str).unique()) \
        if "param_language" in df else [None]
    with figures._figure(len(parts), len(languages), bottom=0.9) as (fig, axes):
        for j, lang in enumerate(languages):
            rows = df if lang is None else df[df["param_language"].astype(str) == lang]
            for i, part in enumerate(parts):
                ax = axes[i][j]
                med = (rows.assign(v=rows[f"mae_{part}"].astype(float))
                       .groupby(["unit", "framework"])["v"].median().reset_index())
                if not np.isfinite(med["v"]).any():
                    figures._no_data(ax, "no such numbers")
                    continue
                figures._bars(ax, med, "v")
                ax.set_yscale("log")
                ax.set(title=f"{lang or ''} {part}".strip(), ylabel="MAE (median over seeds)")
        axes[0][0].legend(title="framework", fontsize="small")
        return figures._png(fig)


def claim(df: pd.DataFrame) -> dict | None:
    """Per language and framework, each output layer's median MAE against Linear's on the
    numbers the published test set is made of (interpolation), and on the whole test split."""
    if not {"mae_test", "mae_interpolation", "unit"} <= set(df):
        return None
    keys = [k for k in ("param_language", "framework") if k in df]
    med = (df.assign(i=df["mae_interpolation"].astype(float), t=df["mae_test"].astype(float))
           .groupby([*keys, "unit"])[["i", "t"]].median())
    rows = []
    for key, g in med.groupby(level=keys, sort=True):
        g = g.droplevel(keys)
        linear = g["i"].get("linear", np.nan)
        key = key if isinstance(key, tuple) else (key,)
        for unit, v in g.iterrows():
            rows.append([*map(str, key), unit, num(v["i"]), num(linear),
                         num(v["i"] / linear) if np.isfinite(linear) and linear > 0 else "–",
                         num(v["t"]),
                         "far below Linear" if unit == "nalu" else
                         ("the reference" if unit == "linear" else "–")])
    if not rows:
        return None
    names = {"param_language": "language", "framework": "framework"}
    return {"note": CLAIM, "rows": rows, "numeric": (len(keys) + 2, len(keys) + 5),
            "columns": [*(names[k] for k in keys), "output layer",
                        "interpolation MAE (this run)", "Linear's interpolation MAE",
                        "ratio to Linear", "test MAE incl. held-out hundreds",
                        "[NALU] test MAE (qualitative)"]}


def section(task: str, df: pd.DataFrame, curves: pd.DataFrame | None) -> dict:
    out = base_section(task, df, curves)
    table = mae_table(df)
    if table:
        out["tables"] = [table, *out["tables"]]
    out["figures"] = figure(
        "Test MAE inside the training hundreds (interpolation) and on the held-out hundreds "
        "(extrapolation), median over seeds", mae_bars(df)) + out["figures"]
    out["comparison"] = claim(df)
    return out
