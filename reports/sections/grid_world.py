"""The grid-world timing section: the base one, a table of success inside and beyond the
training range, and success rate by instruction T (training range shaded)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from reports import figures
from reports.html import base_section, figure, num


def by_T(df: pd.DataFrame) -> pd.DataFrame:
    """success_by_T dicts flattened: one row per run and T (unit, framework, seed, T, ...)."""
    if "success_by_T" not in df:
        return pd.DataFrame(columns=["unit", "framework", "seed", "T", "success", "reward"])
    rows = []
    for r in df.reindex(columns=["unit", "framework", "seed", "success_by_T"]).to_dict("records"):
        curve = r["success_by_T"]
        if not isinstance(curve, dict) or not curve.get("T"):
            continue
        for i, T in enumerate(curve["T"]):
            rows.append({"unit": r["unit"], "framework": r["framework"], "seed": r["seed"], "T": T,
                         "success": curve["success"][i],
                         "reward": (curve.get("reward") or curve["success"])[i]})
    return pd.DataFrame(rows, columns=["unit", "framework", "seed", "T", "success", "reward"])


def success_by_T(long: pd.DataFrame, train: tuple[float, float] | None) -> bytes | None:
    """Mean success rate over seeds against T, per core and framework; training range shaded,
    the 50% line dashed."""
    if long.empty:
        return None
    mean = long.groupby(["unit", "framework", "T"], sort=True)["success"].mean().reset_index()
    colours = figures._palette(mean["unit"])
    with figures._figure(1, 1, width=6.5, height=3.5) as (fig, axes):
        ax = axes[0][0]
        for (unit, fw), line in mean.groupby(["unit", "framework"], sort=True):
            ax.plot(line["T"], line["success"], figures._STYLES.get(fw, ":"), marker=".",
                    color=colours[unit], label=f"{unit} {fw}")
        if train is not None:
            ax.axvspan(train[0] - 0.5, train[1] + 0.5, color="0.85", zorder=0,
                       label="training range")
        ax.axhline(0.5, color="0.5", linewidth=0.8, linestyle=":")
        ax.set(xlabel="instruction T (steps to arrive)", ylabel="success rate (mean over seeds)",
               ylim=(-0.03, 1.03))
        ax.legend(fontsize="x-small", ncol=2)
        return figures._png(fig)


def training_curves(curves: pd.DataFrame) -> bytes | None:
    """Success rate (1 - the curve's failure rate) against update, mean over seeds: on the
    training T and on the T beyond them, per core and framework."""
    if curves is None or curves.empty:
        return None
    data = curves.assign(success=1.0 - curves["mse"].astype(float))
    mean = data.groupby(["set", "unit", "framework", "step"], sort=True)["success"].mean()
    mean = mean.reset_index()
    sets = [s for s in ("interpolation", "extrapolation") if s in set(mean["set"])]
    if not sets:
        return None
    colours = figures._palette(mean["unit"])
    titles = {"interpolation": "training T", "extrapolation": "T beyond the training range"}
    with figures._figure(1, len(sets), sharey=True) as (fig, axes):
        for ax, name in zip(axes[0], sets):
            for (unit, fw), line in mean[mean["set"] == name].groupby(["unit", "framework"]):
                ax.plot(line["step"], line["success"], figures._STYLES.get(fw, ":"),
                        marker=".", color=colours[unit], label=f"{unit} {fw}")
            ax.set(title=titles[name], xlabel="update", ylabel="success rate", ylim=(-0.03, 1.03))
        axes[0][0].legend(fontsize="x-small")
        return figures._png(fig)


def _table(df: pd.DataFrame) -> dict | None:
    cols = ["train_success", "test_success", "reach_beyond", "random_success"]
    if not set(cols) <= set(df.columns):
        return None
    g = df.groupby(["unit", "framework"], sort=True)
    rows = [[unit, fw, int(len(rows)), num(rows["train_success"].mean()),
             num(rows["test_success"].mean()), num(rows["reach_beyond"].median()),
             num(rows["reach_beyond"].max()), num(rows["random_success"].mean())]
            for (unit, fw), rows in g]
    return {"op": "", "rows": rows, "numeric": (3, 8),
            "columns": ["core", "framework", "runs", "success on training T (mean)",
                        "success on T beyond it (mean)", "reach beyond (median)",
                        "reach beyond (best)", "random policy on training T"]}


def _train_range(df: pd.DataFrame) -> tuple[float, float] | None:
    if "train_T" not in df:
        return None
    ranges = [tuple(v) for v in df["train_T"] if isinstance(v, (list, tuple)) and len(v) == 2]
    if not ranges:
        return None
    return float(np.min([r[0] for r in ranges])), float(np.max([r[1] for r in ranges]))


def section(task: str, df: pd.DataFrame, curves: pd.DataFrame | None) -> dict:
    # the base section's learning curves would call the failure rates "MSE": drawn here instead
    out = base_section(task, df, None)
    table = _table(df)
    if table:
        out["tables"] = [table, *out["tables"]]
    mine = None if curves is None else curves[curves["id"].isin(df["id"])]
    out["figures"] = figure(
        "Success rate by instruction T (greedy policy, mean over seeds); the training range "
        "is shaded, the dotted line is 50%", success_by_T(by_T(df), _train_range(df))) \
        + figure("Success rate during training (greedy, on the fixed evaluation episodes), "
                 "mean over seeds", training_curves(mine)) + out["figures"]
    return out
