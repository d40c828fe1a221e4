"""One self-contained HTML report (Jinja2, autoescaped, inline CSS) plus the tables beside it."""
from __future__ import annotations

import importlib
import importlib.util
import itertools
import os
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from benchmarks.store import atomic_write_text
from reports import figures, frame, published, stats

TEMPLATES = Path(__file__).with_name("templates")
_ENV = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                   autoescape=select_autoescape(("html", "html.j2"), default=True),
                   trim_blocks=True, lstrip_blocks=True)
_MEDIANS = {"extrapolation_normalised": "extrapolation normalised",
            "interpolation_normalised": "interpolation normalised",
            "interpolation_mse": "interpolation MSE", "extrapolation_mse": "extrapolation MSE",
            "solved_at": "solved at (step)", "sparsity_error": "sparsity error"}


def num(value) -> str:
    """%.3g keeps medians spanning many decades readable; a dash where there is none."""
    return "–" if pd.isna(value) else f"{value:.3g}"


def step_text(value) -> str:
    """Steps are counts: "1500", not %.3g's "1.5e+03"."""
    return "–" if pd.isna(value) else f"{value:.0f}"


def rate(rate, low, high) -> str:
    """A rate is meaningless without its interval: "80% [49%, 94%]" (bare where none is known)."""
    if pd.isna(rate):
        return "–"
    return f"{rate:.0%}" if pd.isna(low) else f"{rate:.0%} [{low:.0%}, {high:.0%}]"


def _unique(df: pd.DataFrame, col: str) -> list:
    """Distinct non-missing values of a column that may not exist."""
    return sorted(df[col].dropna().astype(str).unique()) if col in df else []


def _duration(seconds: float) -> str:
    """"1 h 02 min", "3 min 05 s", "12.3 s": a total a person can read."""
    if pd.isna(seconds):
        return "–"
    minutes, sec = divmod(round(seconds), 60)
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes} min {sec:02d} s" if minutes else f"{seconds:.1f} s"


def _wall_seconds(df: pd.DataFrame) -> float:
    """Seeds trained together share one wall time: a record counts 1/group_size of it."""
    if "wall_seconds" not in df or df["wall_seconds"].isna().all():
        return float("nan")
    size = df["group_size"] if "group_size" in df else pd.Series(float("nan"), index=df.index)
    # error records carry no group size: their shared wall time counts once per configuration
    group = [c for c in df.columns if (c in frame.SPEC_FIELDS and c != "seed")
             or c.startswith("param_")]
    lone = df[size.isna()].drop_duplicates([*group, "wall_seconds"])["wall_seconds"]
    return float((df["wall_seconds"] / size).sum() + lone.sum())


def _budgets(df: pd.DataFrame) -> list[str]:
    """Each budget with what it means in this run: "quick (20,000 steps, lr 0.005)"."""
    cols = [c for c in ("budget", "steps", "lr", "batch_size") if c in df]
    if "budget" not in df:
        return []
    rows = df[cols].dropna(subset=["budget"]).drop_duplicates().sort_values(cols)
    return [f"{r.budget} ({r.steps:,.0f} steps, lr {r.lr:g}, batch {r.batch_size:.0f})"
            if {"steps", "lr", "batch_size"} <= set(cols) else str(r.budget)
            for r in rows.itertuples()]


def _overview(df: pd.DataFrame) -> dict:
    """What was run and where, so that numbers are never read without their context."""
    machine_cols = [c for c in df.columns if c.startswith("machine_")]
    machines = (df[machine_cols].dropna(how="all").astype(str).drop_duplicates()
                .to_dict("records")) if machine_cols else []
    return {
        "runs": len(df), "budgets": _budgets(df), "wall": _duration(_wall_seconds(df)),
        "frameworks": {fw: _unique(df[df["framework"] == fw], f"version_{fw}")
                       for fw in _unique(df, "framework")},
        "versions": {c.removeprefix("version_"): _unique(df, c) for c in ("version_python",
                                                                          "version_numpy")},
        "machines": [{k.removeprefix("machine_"): v for k, v in m.items()} for m in machines],
        "statuses": stats.status_counts(df).to_dict("records") if len(df) else [],
        "corrupt": list(df.attrs.get("corrupt", [])),
    }


def labelled(table: pd.DataFrame, varying: list[str]) -> pd.DataFrame:
    """Figures name a model with the parameters that vary, so no two configurations merge."""
    if not varying or table.empty:
        return table
    parts = [c.removeprefix("param_") + "=" + table[c].astype(str) for c in varying]
    return table.assign(unit=table["unit"].astype(str).str.cat(parts, sep=" "))


def figure(caption: str, png: bytes | None, anchor: str = "") -> list[dict]:
    """A figure as the template shows it (``anchor``: its id, for links to it); nothing
    when there was nothing to draw."""
    return [{"caption": caption, "uri": figures.data_uri(png), "id": anchor}] if png else []


def _leaderboards(table: pd.DataFrame, varying: list[str]) -> list[dict]:
    """Per op, every model x framework ranked by success rate, then by the median normalised
    extrapolation error (100 = the untrained model), then the extrapolation MSE."""
    table = stats.ranked(table)
    ops = (table.groupby("param_op", dropna=False, sort=True) if "param_op" in table
           else [("", table)])
    columns = [*(c.removeprefix("param_") for c in varying), "unit", "framework", "runs",
               "success [95% CI]", *_MEDIANS.values(), "diverged"]
    numeric = (len(varying) + 3, len(columns))  # runs .. diverged, right-aligned
    return [{"op": "" if pd.isna(op) else op, "columns": columns, "numeric": numeric, "rows": [
        [*(r[c] for c in varying), r["unit"], r["framework"], int(r["runs"]),
         rate(r["success"], r["success_low"], r["success_high"]),
         *((step_text if m == "solved_at" else num)(r[m]) for m in _MEDIANS), int(r["diverged"])]
        for _, r in rows.iterrows()]} for op, rows in ops]


def _plain(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


def base_section(task: str, df: pd.DataFrame, curves: pd.DataFrame | None) -> dict:
    """Any task: fixed parameters, leaderboards per op, success rates and learning curves."""
    params = [c for c in df.columns if c.startswith("param_") and c != "param_op"]
    varying = [c for c in ["budget", *params] if df[c].astype(str).nunique() > 1]
    # (a column shared with other tasks' rows is float: 100.0 was the integer 100)
    fixed = {c.removeprefix("param_"): _plain(df[c].iloc[0]) for c in ["budget", *params]
             if c not in varying and df[c].notna().any()}
    rates = stats.summary(df, by=("param_op", *varying, "unit", "framework"))
    figs = figure("Success rate per model and framework, with 95% Wilson intervals",
                  figures.success_rates(labelled(rates, varying)))
    if curves is not None:
        mine = curves[curves["id"].isin(df["id"])]
        if varying:
            mine = mine.merge(df[["id", *varying]], on="id")
        figs += figure("Learning curves: median MSE over seeds, inter-quartile band shaded",
                       figures.learning_curves(labelled(mine, varying)))
    return {"task": task, "fixed": fixed, "tables": _leaderboards(rates, varying),
            "figures": figs, "varying": varying, "comparison": None, "fidelity": None}


def section_builder(task: str):
    """``section(task, df, curves)`` of ``reports/sections/<task>.py``, else base_section."""
    if importlib.util.find_spec(f"reports.sections.{task}") is None:
        return base_section
    return importlib.import_module(f"reports.sections.{task}").section


def _frameworks(df: pd.DataFrame) -> dict | None:
    """torch vs tf on the same configurations: success and throughput side by side."""
    if df.empty:
        return None
    keys = ["task", "param_op", "unit", "framework"]
    table = stats.summary(df, by=keys)
    speed = (df.reindex(columns=[*keys, "seed_steps_per_s"])
             .groupby(keys, dropna=False)["seed_steps_per_s"].median().reset_index())
    table = table.merge(speed, on=[k for k in keys if k in table], how="left")
    cols = ["task", "param_op", "unit"] if table["task"].nunique() > 1 else ["param_op", "unit"]
    table["config"] = [" ".join(str(v) for v in row if pd.notna(v))
                       for row in table.reindex(columns=cols).itertuples(index=False)]
    fws = sorted(table["framework"].unique())
    wide = table.groupby(["config", "framework"])[["success", "success_low", "success_high",
                                                    "seed_steps_per_s"]].first().unstack()
    rows = [[config, *(rate(*(r[(v, fw)] for v in ("success", "success_low", "success_high")))
                       for fw in fws), *(num(r[("seed_steps_per_s", fw)]) for fw in fws)]
            for config, r in wide.iterrows()]
    return {"columns": ["configuration", *(f"{fw} success" for fw in fws),
                        *(f"{fw} seed-steps/s" for fw in fws)], "rows": rows,
            "numeric": (2, 1 + 2 * len(fws)),
            "figures": figure("torch vs tf per configuration: success rate (95% Wilson "
                               "interval) and median training throughput",
                               figures.frameworks(table))}


def _task_order(item) -> tuple:
    """Sections in the order the tasks are registered (static arithmetic first)."""
    import tasks

    names = list(tasks.TASKS)
    return (names.index(item[0]) if item[0] in names else len(names), item[0])


RANGE_PARAMS = ("param_interpolation_range", "param_extrapolation_range")
MAX_RANGE_COLUMNS = 3  # range pairs per (task, op) shown as their own columns; more: pooled


def _board_columns(finished: pd.DataFrame) -> pd.Series:
    """Per run, its scoreboard column: the task, its op and the parameters that vary within
    the task ("static_arithmetic add", "text_to_number language=de"). Where an op ran over
    more than `MAX_RANGE_COLUMNS` range pairs ([Primer]'s 9), its range pairs share one
    column ("static_arithmetic add, 9 range pairs"), which leads to the per-range heatmap:
    36 columns of range pairs do not fit a page side by side."""
    column = pd.Series("", index=finished.index, dtype=object)
    for task, rows in finished.groupby("task"):
        rows = rows.dropna(axis=1, how="all")
        params = [c for c in rows.columns if c.startswith("param_") and c != "param_op"]
        ranges = [c for c in RANGE_PARAMS if c in rows]
        op = rows["param_op"].fillna("").astype(str) if "param_op" in rows else None
        pairs = (rows[ranges].astype(str).agg("|".join, axis=1).groupby(op if op is not None
                 else pd.Series("", index=rows.index)).transform("nunique")
                 if ranges else pd.Series(1, index=rows.index))
        pooled = pairs > MAX_RANGE_COLUMNS
        varying = _naming(rows, [c for c in ["budget", *_by_task_order(task, params)]
                                 if rows[c].astype(str).nunique() > 1])
        parts = [pd.Series(task, index=rows.index)]
        if op is not None:
            parts.append(op)
        for c in varying:
            part = c.removeprefix("param_") + "=" + rows[c].map(_short)
            parts.append(part.mask(pooled, "") if c in ranges else part)
        labels = [" ".join(v for v in vals if v) for vals in zip(*parts)]
        column.loc[rows.index] = [f"{label}, {n} range pairs" if pool else label
                                  for label, n, pool in zip(labels, pairs, pooled)]
    return column


def _by_task_order(task: str, params: list[str]) -> list[str]:
    """The parameter columns in the order the task declares its parameters."""
    import tasks

    declared = list(getattr(tasks.TASKS.get(task), "parameters", {}))
    return sorted(params, key=lambda c: (declared.index(c.removeprefix("param_"))
                                         if c.removeprefix("param_") in declared
                                         else len(declared)))


def _naming(rows: pd.DataFrame, candidates: list[str]) -> list[str]:
    """The fewest candidate columns (the first such set in candidate order) that tell apart
    every combination all of them make: parameters that follow from another
    (sequential_mnist's test lengths from its operation) stay out of the label."""
    def told_apart(cols):
        return rows[list(cols)].astype(str).agg("|".join, axis=1).nunique() if cols else 1

    want = told_apart(candidates)
    for k in range(min(len(candidates), 4) + 1):  # beyond 4: every candidate
        for cols in itertools.combinations(candidates, k):
            if told_apart(cols) == want:
                return list(cols)
    return candidates


def _short(value) -> str:
    """A parameter value as a label shows it: 10.0 -> 10 (a column with gaps is float)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _scoreboard(finished: pd.DataFrame) -> dict | None:
    """Success rate per model x (task, op) and framework: a heatmap, and beneath it the same
    cells with their 95% Wilson intervals, each column linking to its task's section."""
    if "scored" in finished:  # a run with no bar to pass (a reference run, which makes one)
        finished = finished[finished["scored"].astype("boolean").fillna(True)]
    if finished.empty:
        return None
    runs = finished.assign(column=_board_columns(finished),
                           limited=published.budget_limited(finished))
    cells = stats.summary(runs, by=("column", "task", "unit", "framework"))
    cells = cells.merge(runs.groupby(["column", "unit", "framework"])["limited"].any()
                        .reset_index(), on=["column", "unit", "framework"])
    cells["_order"] = [_task_order((t,)) for t in cells["task"]]
    cells = cells.sort_values(["_order", "column", "unit", "framework"], kind="stable")
    columns = cells.drop_duplicates("column")[["column", "task"]]
    leaders = {col: (r["unit"], r["framework"]) for col, g in cells.groupby("column")
               for r in [stats.ranked(g).iloc[0]]}
    wide = cells.set_index(["unit", "framework", "column"])
    rows = []
    for unit, fw in _board_order(cells):
        row = []
        for col in columns["column"]:
            if (unit, fw, col) not in wide.index:
                row.append({"rate": "", "interval": "", "normalised": "", "lead": False,
                            "title": "not run", "limited": False})
                continue
            c = wide.loc[(unit, fw, col)]
            text = rate(c["success"], c["success_low"], c["success_high"])
            norm = num(c["extrapolation_normalised"])
            row.append({"rate": f"{c['success']:.0%}", "limited": bool(c["limited"]),
                        "interval": text.removeprefix(f"{c['success']:.0%}").strip(),
                        "normalised": norm, "lead": leaders[col] == (unit, fw),
                        "title": f"{unit} {fw} on {col}: {text} of {int(c['runs'])} run"
                                 + ("s" if c["runs"] != 1 else "")
                                 + (" (budget shorter than the published median solved-at "
                                    "step)" if c["limited"] else "")
                                 + f"; median normalised extrapolation error {norm}"})
        rows.append({"unit": unit, "framework": fw, "cells": row})
    return {"columns": [{"label": c, "href": "#range-pairs" if c.endswith(" range pairs")
                         and t == "static_arithmetic" else f"#task-{t}"}
                        for c, t in columns.itertuples(index=False)],
            "rows": rows, "limited": bool(cells["limited"].any()),
            "figures": figure("Success rate per model (rows) and task (columns), one panel per "
                              "framework; † and hatching: the budget is shorter than [NAU]'s "
                              "median solved-at step for that op and model",
                              figures.scoreboard(cells))
            + figure("Median normalised extrapolation error per model and task (100 = the "
                     "untrained model of the same seed, 0 = exact; lower is better, the "
                     "colour saturates at 100), one panel per framework",
                     figures.scoreboard(cells, value="extrapolation_normalised"))}


def _board_order(cells: pd.DataFrame) -> list[tuple[str, str]]:
    """The scoreboard's rows, best first: by the mean success rate over the columns a model
    ran, then (where that ties, e.g. all 0%) by the median over its columns of its median
    normalised extrapolation error (missing last), then by name."""
    per = cells.groupby(["unit", "framework"]).agg(
        success=("success", "mean"), normalised=("extrapolation_normalised", "median"))
    per = per.reset_index().sort_values(["unit", "framework"])
    per = per.sort_values(["success", "normalised"], ascending=[False, True], kind="stable",
                          na_position="last")
    return list(zip(per["unit"], per["framework"]))


def _contents(sections: list[dict], frameworks: dict | None, scoreboard: dict | None) -> list:
    """The table of contents: (anchor, title, sub-entries)."""
    out = [("scoreboard", "Scoreboard", [])] if scoreboard else []
    out.append(("overview", "Overview", []))
    for s in sections:
        subs = [("fidelity", "Fidelity to the published results")] if s.get("fidelity") else []
        out.append((f"task-{s['task']}", s["task"], subs))
    if frameworks:
        out.append(("frameworks", "Frameworks side by side", []))
    return out


def render_table(out_path: str | os.PathLike, title: str, lines: list[str], columns: list[str],
                 rows: list[list], marked: list[str] | None = None) -> Path:
    """A one-table page (``compare -o``): a title, lines of context, the table; rows whose
    `marked` entry is non-empty get that entry as their class (e.g. "worse")."""
    out_path = Path(out_path)
    html = _ENV.get_template("table.html.j2").render(
        title=title, lines=lines, table={"columns": columns, "rows": rows,
                                         "marked": marked or [""] * len(rows)})
    return atomic_write_text(out_path, html)


def render(df: pd.DataFrame, out_path: str | os.PathLike, title: str = "ArithBench report",
           curves: pd.DataFrame | None = None) -> Path:
    """Write the report to out_path and results.csv/.parquet next to it, each atomically
    (`benchmarks.store.atomic_write`: a full disk leaves the older file, never a cut one);
    return the HTML path.

    curves (frame.read / frame.curves) adds the learning-curve figures."""
    out_path = Path(out_path)
    finished = df[df["status"].isin(("ok", "diverged"))] if len(df) else df
    sections = [section_builder(task)(task, rows.dropna(axis=1, how="all"), curves)
                for task, rows in sorted(finished.groupby("task"), key=_task_order)
                ] if len(finished) else []
    frameworks = _frameworks(finished) if len(finished) else None
    board = _scoreboard(finished) if len(finished) else None
    html = _ENV.get_template("report.html.j2").render(
        title=title, overview=_overview(df), sections=sections, frameworks=frameworks,
        scoreboard=board, contents=_contents(sections, frameworks, board))
    frame.save(df, out_path.parent)
    return atomic_write_text(out_path, html)
