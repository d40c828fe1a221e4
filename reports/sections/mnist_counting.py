"""The digit-sequence tasks' section (mnist_counting, and mnist_addition through its own
module): the base section, which digits were used, and accuracy / MAE per test length."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from reports import figures
from reports.html import base_section, figure, labelled, num

_LENGTH = re.compile(r"^accuracy_(\d+)$")


def lengths(df: pd.DataFrame) -> list[int]:
    """The evaluated sequence lengths, from the flat ``accuracy_<L>`` metric columns."""
    return sorted(int(m.group(1)) for c in df.columns if (m := _LENGTH.match(c)))


def digits_text(df: pd.DataFrame) -> str:
    """Which images the runs used: "sklearn (8x8): 1257 train / 540 test images", one entry
    per distinct source."""
    cols = ["digits_source", "digits_side", "digits_train", "digits_test", "digits_location"]
    if not set(cols) <= set(df.columns):
        return "not recorded"
    rows = df[cols].dropna().drop_duplicates().itertuples(index=False)
    return "; ".join(f"{s} ({side:.0f}x{side:.0f}) from {loc}: {train:,.0f} train / "
                     f"{test:,.0f} test images" for s, side, train, test, loc in rows)


def per_length_table(df: pd.DataFrame, varying: list[str]) -> dict | None:
    """Median over seeds, per model and framework: accuracy and MAE at every length."""
    ls = lengths(df)
    if not ls:
        return None
    keys = [*varying, "unit", "framework"]
    cols = [f"{k}_{L}" for L in ls for k in ("accuracy", "mae")]
    table = df.groupby(keys, dropna=False)[cols].median().reset_index()
    runs = df.groupby(keys, dropna=False).size().reset_index(name="runs")["runs"]
    rows = []
    for (_, r), n in zip(table.iterrows(), runs):
        cells = [v for L in ls for v in (
            "–" if pd.isna(r[f"accuracy_{L}"]) else f"{r[f'accuracy_{L}']:.0%}",
            num(r[f"mae_{L}"]))]
        rows.append([*(r[k] for k in keys), int(n), *cells])
    columns = [*(k.removeprefix("param_") for k in varying), "unit", "framework", "runs",
               *(f"{name} L={L}" for L in ls for name in ("accuracy", "MAE"))]
    return {"op": "", "columns": columns, "rows": rows,
            "numeric": (len(keys) + 1, len(columns))}


def length_figure(df: pd.DataFrame) -> bytes | None:
    """Accuracy and relative error (MAE / mean |target|) against the sequence length."""
    ls = lengths(df)
    if not ls or df.empty:
        return None
    long = pd.concat([df.assign(length=L, accuracy=df[f"accuracy_{L}"],
                                relative_error=df.get(f"relative_error_{L}", np.nan))
                      [["unit", "framework", "length", "accuracy", "relative_error"]]
                      for L in ls], ignore_index=True)
    long["relative_error"] = figures._positive(long["relative_error"])
    with figures._figure(1, 2, width=4.5) as (fig, axes):
        for ax, value, label in ((axes[0, 0], "accuracy", "accuracy (median over seeds)"),
                                 (axes[0, 1], "relative_error", "MAE / mean |target|")):
            med = long.groupby(["unit", "framework", "length"])[value].median().reset_index()
            for (unit, fw), rows in med.groupby(["unit", "framework"]):
                ax.plot(rows["length"], rows[value], figures._STYLES.get(fw, "-"), marker="o",
                        label=f"{unit} ({fw})")
            ax.set_xscale("log")
            if value == "relative_error" and "param_success_error" in df:
                ax.axhline(float(df["param_success_error"].astype(float).median()), color="0.5",
                           lw=0.8, ls=":", label="success threshold")
            if value == "relative_error" and np.isfinite(med[value]).any():
                ax.set_yscale("log")
            ax.set_xlabel("sequence length (training: 10)")
            ax.set_ylabel(label)
        axes[0, 1].legend(fontsize=7)
        return figures._png(fig)


def section(task: str, df: pd.DataFrame, curves: pd.DataFrame | None) -> dict:
    out = base_section(task, df, curves)
    out["fixed"] = {**out["fixed"], "digits": digits_text(df)}
    table = per_length_table(df, out["varying"])
    if table:
        out["tables"].append(table)
    out["figures"] += figure(
        "Accuracy of the rounded output (counting: all ten counts right) and relative error "
        "against the test sequence length; trained on length 10",
        length_figure(labelled(df, out["varying"])))
    return out
