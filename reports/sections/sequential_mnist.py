"""Sequential MNIST's section ([NAU]'s sum and product of digit images): the base section,
which digits were used, success rate against the test length per model (as [NAU]'s
figures draw it, its readings beside), and the fidelity table: every published reading
beside this run's rate at the same operation, model and R_z, with a verdict."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from reports import figures, published, stats
from reports.html import base_section, figure, num, rate
from reports.sections.mnist_counting import digits_text

_SUCCESS = re.compile(r"^success_(\d+)$")
KEYS = ("param_operation", "param_regulariser_z", "unit", "framework")


def lengths(df: pd.DataFrame) -> list[int]:
    """The scored test lengths, from the flat ``success_<L>`` columns."""
    return sorted(int(m.group(1)) for c in df.columns if (m := _SUCCESS.match(c)))


def scored(df: pd.DataFrame) -> pd.DataFrame:
    """The finished runs that were scored against thresholds (not the reference runs,
    which are the bar, nor runs whose references did not finish)."""
    if df.empty or "scored" not in df:
        return df.iloc[0:0]
    rows = df[df["status"].isin(("ok", "diverged")) & df["scored"].astype("boolean").fillna(False)]
    if "param_simplification" in rows:
        rows = rows[rows["param_simplification"].fillna("none").eq("none")]
    return rows


def per_length(df: pd.DataFrame) -> pd.DataFrame:
    """Per configuration (KEYS, steps) and test length: runs, successes, rate with its
    Wilson 95% interval and the median test MSE (a diverged run is a failure)."""
    rows, ls = scored(df), lengths(df)
    if rows.empty or not ls:
        return pd.DataFrame()
    keys = [k for k in (*KEYS, "steps") if k in rows]
    # a run counts at the lengths it was scored at (sum and product test different ones)
    long = pd.concat([tested.assign(length=L, won=tested["status"].eq("ok")
                                    & tested[f"success_{L}"].astype(bool),
                                    mse=tested.get(f"mse_{L}", np.nan))[[*keys, "length", "won",
                                                                         "mse"]]
                      for L in ls if f"success_{L}" in rows
                      for tested in (rows[rows[f"success_{L}"].notna()],)], ignore_index=True)
    out = long.groupby([*keys, "length"], dropna=False).agg(
        runs=("won", "size"), successes=("won", "sum"), mse=("mse", "median")).reset_index()
    out["success"] = out["successes"] / out["runs"]
    out["success_low"], out["success_high"] = proportion_confint(
        out["successes"], out["runs"], alpha=0.05, method="wilson")
    return out


def _model(row) -> str:
    rz = row.get("param_regulariser_z")
    return f"{row['unit']}{' R_z' if pd.notna(rz) and float(rz) > 0 else ''} ({row['framework']})"


def length_figure(df: pd.DataFrame) -> bytes | None:
    """Success rate against the test length, one panel per operation, a line per model,
    R_z and framework, Wilson 95% band; [NAU]'s readings (published.csv) as grey marks."""
    table = per_length(df)
    if table.empty:
        return None
    ops = sorted(table["param_operation"].dropna().unique())
    pub = published.table("sequential_mnist")
    with figures._figure(1, len(ops), width=5.0) as (fig, axes):
        for ax, op in zip(axes[0], ops):
            mine = table[table["param_operation"] == op]
            for _, rows in mine.groupby([k for k in KEYS if k in mine and k != "param_operation"],
                                        dropna=False):
                first = rows.iloc[0]
                line, = ax.plot(rows["length"], rows["success"], marker="o",
                                ls=figures._STYLES.get(first["framework"], "-"),
                                label=_model(first))
                ax.fill_between(rows["length"], rows["success_low"], rows["success_high"],
                                color=line.get_color(), alpha=0.15)
            for r in pub[pub["op"] == op].itertuples():
                lo, hi = _span(r.length)
                ax.plot([lo, hi], [r.success, r.success], color="0.5", lw=3, alpha=0.5)
                ax.annotate(r.model, (hi, r.success), fontsize=6, color="0.4")
            ax.set_xscale("log")
            ax.set_ylim(-0.03, 1.03)
            ax.set_xlabel(f"test length (operation={op})")
            ax.set_ylabel("success rate")
            ax.legend(fontsize=7)
        return figures._png(fig)


def _span(text) -> tuple[int, int]:
    """published.csv's ``length``: "1-1000" -> (1, 1000), "10" -> (10, 10)."""
    parts = [int(p) for p in str(text).split("-")]
    return parts[0], parts[-1]


def fidelity(df: pd.DataFrame, alpha: float = published.ALPHA) -> pd.DataFrame:
    """Every published reading (operation, model, lengths) beside this run's rate at the
    longest test length in its range, per framework and steps: Fisher's exact test of this
    run's successes against the published rate times [NAU]'s 10 seeds, Holm-corrected, and
    a verdict (published.VERDICTS; "budget too short" for a lower rate on fewer steps than
    [NAU]'s)."""
    pub = published.table("sequential_mnist").reset_index(names="order")
    pub["rz"] = pub["model"].str.contains("R_z").astype(float)
    table = per_length(df)
    rows = []
    for r in pub.itertuples():
        lo, hi = _span(r.length)
        mine = table.iloc[0:0] if table.empty or not r.unit else table[
            table["param_operation"].eq(r.op) & table["unit"].eq(r.unit)
            & table["param_regulariser_z"].astype(float).eq(r.rz)
            & table["length"].between(lo, hi)]
        base = {"order": r.order, "op": r.op, "model": r.model, "unit": r.unit,
                "lengths": r.length, "published_success": r.success, "seeds": r.seeds,
                "published_steps": r.steps, "source_file": r.source_file}
        if mine.empty:
            rows.append(base)
            continue
        for _, cell in mine.groupby(["framework", "steps"]):
            at = cell.loc[cell["length"].idxmax()]
            rows.append({**base, "framework": at["framework"], "steps": at["steps"],
                         "length": at["length"], "runs": at["runs"],
                         "successes": at["successes"], "success": at["success"],
                         "success_low": at["success_low"], "success_high": at["success_high"],
                         "mse": at["mse"]})
    out = pd.DataFrame(rows).reindex(columns=[
        "order", "op", "model", "unit", "lengths", "framework", "steps", "length", "runs",
        "successes", "success", "success_low", "success_high", "mse", "published_success",
        "seeds", "published_steps", "source_file"])
    out["published_successes"] = (out["published_success"] * out["seeds"]).round()
    out["p"] = [stats.fisher(int(r.successes), int(r.runs), int(r.published_successes),
                             int(r.seeds)) if r.runs > 0 else np.nan for r in out.itertuples()]
    out["p_holm"] = stats.holm(out["p"])
    out["budget_limited"] = (out["steps"] < out["published_steps"]).fillna(False)
    out["verdict"] = [published._verdict(r, alpha) for r in out.itertuples()]
    out = out.assign(_untested=out["runs"].isna()).sort_values(
        ["_untested", "order", "framework", "steps"], kind="stable")
    return out.drop(columns=["_untested", "order"]).reset_index(drop=True)


def _fidelity(df: pd.DataFrame) -> dict | None:
    """The fidelity table as the template shows it (the static task's layout)."""
    if scored(df).empty and not len(df):
        return None
    fid = fidelity(df)
    tested, rest = fid[fid["runs"].notna()], fid[fid["runs"].isna()]
    rows = [{"verdict": r.verdict, "cells": [
        r.op, r.model, r.unit, r.framework, f"{r.steps:,.0f}", f"{r.length:.0f} ({r.lengths})",
        f"{int(r.successes)}/{int(r.runs)}: {rate(r.success, r.success_low, r.success_high)}",
        f"{r.published_success:.0%}", f"{r.published_steps:,.0f}", f"{r.p_holm:.2g}",
        r.verdict, r.source_file.split(" ")[0]]} for r in tested.itertuples()]
    missing = [[r.op, r.model, r.unit or "–", r.lengths, f"{r.published_success:.0%}",
                r.verdict, r.source_file.split(" ")[0]] for r in rest.itertuples()]
    counts = tested["verdict"].value_counts()
    runs = scored(df)
    steps = sorted(runs["steps"].dropna().unique()) if len(runs) else []
    note = None if not steps or min(steps) >= 86_086 else (
        f"This run trained {' / '.join(f'{s:,.0f}' for s in steps)} steps; [NAU] trained "
        f"1,001 epochs (sum 86,086 steps, product about 388,000) with 10 seeds. Compare "
        f"with care.")
    return {"intro": (
        "[NAU]'s sequential MNIST success rates (Madsen & Johansen 2020, 10 seeds, read off "
        "its figures: published.csv, verified false) beside this run at the same operation, "
        "model and R_z, at the longest test length this run scored within the reading's "
        "range. Fisher's exact test of this run's successes against [NAU]'s rate times 10, "
        f"Holm-corrected over the {len(tested)} cells tested: agrees when the corrected p is "
        f"at least {published.ALPHA}; budget too short when it is lower, this run's rate is "
        "below [NAU]'s and it trained fewer steps; differs otherwise."),
        "note": note, "alpha": published.ALPHA, "tested": len(tested),
        "counts": [(v, int(counts.get(v, 0))) for v in published.VERDICTS[:3]],
        "columns": ["operation", "[NAU] model", "suite model", "framework", "steps",
                    "length (reading's range)", "this run: successes/runs, rate [95% CI]",
                    "[NAU]: rate", "[NAU] steps", "p (Fisher, Holm)", "verdict",
                    "[NAU] figure"],
        "rows": rows, "numeric": (5, 10),
        "missing": {"columns": ["operation", "[NAU] model", "suite model", "lengths",
                                "[NAU]: rate", "why no verdict", "[NAU] figure"],
                    "rows": missing, "numeric": (5, 5)}}


def per_length_table(df: pd.DataFrame) -> dict | None:
    """Per configuration: success rate and median test MSE at every scored length."""
    table = per_length(df)
    if table.empty:
        return None
    keys = [k for k in (*KEYS, "steps") if k in table]
    ls = sorted(table["length"].unique())
    rows = []
    for key, cell in table.groupby(keys, dropna=False):
        by = cell.set_index("length")
        cells = [v for L in ls for v in (
            (rate(by.at[L, "success"], by.at[L, "success_low"], by.at[L, "success_high"])
             if L in by.index else "–"), num(by.at[L, "mse"]) if L in by.index else "–")]
        rows.append([*key, int(cell["runs"].max()), *cells])
    columns = [*(k.removeprefix("param_") for k in keys), "runs",
               *(f"{name} L={L}" for L in ls for name in ("success", "MSE"))]
    return {"op": "", "columns": columns, "rows": rows, "numeric": (len(keys) + 1, len(columns))}


def section(task: str, df: pd.DataFrame, curves: pd.DataFrame | None) -> dict:
    out = base_section(task, df, curves)
    out["fixed"] = {**out["fixed"], "digits": digits_text(df)}
    table = per_length_table(df)
    if table:
        out["tables"].append(table)
    out["figures"] += figure(
        "Success rate against the test length ([NAU]'s figures): runs scored against the "
        "solved-accumulator reference runs' thresholds, Wilson 95% band; grey bars: [NAU]'s "
        "readings over their lengths", length_figure(df), anchor="sequential-mnist-lengths")
    out["fidelity"] = _fidelity(df)
    return out
