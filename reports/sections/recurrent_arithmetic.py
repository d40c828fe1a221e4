"""The recurrent task's section: the base one, plus success and error per sequence length
(does a model trained on length 10 still add at 100 and 1000?)."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from reports import figures, stats
from reports.html import base_section, figure, num

_LENGTH = re.compile(r"^mse_(\d+)$")


def lengths(df: pd.DataFrame) -> list[int]:
    """The evaluated lengths, from the flat ``mse_<L>`` metric columns."""
    return sorted(int(m.group(1)) for c in df.columns if (m := _LENGTH.match(c)))


def per_length(df: pd.DataFrame) -> pd.DataFrame:
    """Long form: one row per (op, model, framework, length) with the success rate (Wilson
    interval) and the median MSE and normalised error over seeds."""
    rows = []
    for L in lengths(df):
        part = df.assign(success=df[f"success_{L}"].astype(float),
                         mse=df[f"mse_{L}"].astype(float),
                         normalised=df.get(f"normalised_{L}", np.nan))
        keys = [k for k in ("param_op", "unit", "framework") if k in part]
        for key, g in part.groupby(keys, dropna=False):
            low, high = stats.wilson(int(g["success"].sum()), len(g))
            rows.append({**dict(zip(keys, key)), "length": L, "runs": len(g),
                         "success": g["success"].mean(), "success_low": low,
                         "success_high": high, "mse": g["mse"].median(),
                         "normalised": g["normalised"].astype(float).median()})
    return pd.DataFrame(rows)


def length_figure(table: pd.DataFrame) -> bytes | None:
    """Success rate and median MSE against the sequence length, one line per model."""
    if table.empty:
        return None
    if "param_op" in table and table["param_op"].nunique() > 1:  # one line per op and model
        table = table.assign(unit=table["unit"] + " " + table["param_op"].astype(str))
    with figures._figure(1, 2, width=4.5) as (fig, axes):
        colours = figures._palette(table["unit"])
        for ax, value, label in ((axes[0, 0], "success", "success rate"),
                                 (axes[0, 1], "mse", "MSE (median over seeds)")):
            for (unit, fw), rows in table.groupby(["unit", "framework"], sort=True):
                y = (rows[value] if value == "success"
                     else figures._positive(rows[value]))
                ax.plot(rows["length"], y, figures._STYLES.get(fw, ":"), marker="o",
                        color=colours[unit], label=f"{unit} ({fw})")
            ax.set_xscale("log")
            if value == "mse" and np.isfinite(figures._positive(table["mse"])).any():
                ax.set_yscale("log")
            ax.set(xlabel="sequence length (training: 10)", ylabel=label)
        axes[0, 0].set_ylim(-0.05, 1.05)
        axes[0, 1].legend(fontsize=7)
        return figures._png(fig)


def _table(table: pd.DataFrame) -> dict | None:
    if table.empty:
        return None
    ls = sorted(table["length"].unique())
    keys = [k for k in ("param_op", "unit", "framework") if k in table]
    wide = table.set_index([*keys, "length"])
    rows = []
    for key, _ in table.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        cells = []
        for L in ls:
            r = wide.loc[(*key, L)]
            cells += [f"{r['success']:.0%}", num(r["mse"]), num(r["normalised"])]
        rows.append([*key, int(wide.loc[(*key, ls[0])]["runs"]), *cells])
    columns = [*(k.removeprefix("param_") for k in keys), "runs",
               *(f"{name} L={L}" for L in ls for name in ("success", "MSE", "normalised"))]
    return {"op": "",  # one table, every op: success, median MSE and normalised per length
            "columns": columns, "rows": rows, "numeric": (len(keys) + 1, len(columns))}


def section(task: str, df: pd.DataFrame, curves: pd.DataFrame | None) -> dict:
    out = base_section(task, df, curves)
    table = per_length(df)
    out["figures"] += figure(
        "Success rate (success bar of each length) and median MSE against the sequence "
        "length; trained on length 10, solid torch, dashed tf", length_figure(table))
    extra = _table(table)
    if extra:
        out["tables"].append(extra)
    return out
