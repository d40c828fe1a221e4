"""The static task's section: the base one, error against input magnitude, the fidelity
table (every published [NAU] cell beside this run's rate, with a verdict) and the
explainer's claim beside its runs."""
from __future__ import annotations

from pathlib import PurePosixPath

import pandas as pd

from reports import figures, published
from reports.html import base_section, figure, labelled, num, rate, step_text
from reports.sections import explainer

SOURCES = {"function_task_static": "main", "function_task_static_all": "all",
           "function_task_static_reproduce": "reproduce"}  # stable-nalu's paper/results/*.tex


def _files(source_file: str) -> str:
    """The source tables by short name ("main, all" for function_task_static.tex and
    function_task_static_all.tex; the paths are in published.csv)."""
    stems = (PurePosixPath(f.strip()).stem for f in source_file.split(";"))
    return ", ".join(SOURCES.get(s, s) for s in stems)


def _fidelity(df: pd.DataFrame) -> dict | None:
    """The fidelity table (published.fidelity) as the template shows it: the cells this
    run tested, then the published cells it holds no runs for, and why."""
    fid = published.fidelity(df)
    tested, rest = fid[fid["runs"].notna()], fid[fid["runs"].isna()]
    runs = published.at_published_config(df)
    rows = [{"verdict": r.verdict, "cells": [
        r.op, r.model, r.unit, r.framework, f"{r.steps:,.0f}",
        f"{int(r.successes)}/{int(r.runs)}: {rate(r.success, r.success_low, r.success_high)}",
        rate(r.published_success, r.published_low, r.published_high),
        step_text(r.solved_at), num(r.published_solved_at), f"{r.p_holm:.2g}",
        r.verdict, _files(r.source_file)]} for r in tested.itertuples()]
    missing = [[r.op, r.model, r.unit or "–",
                rate(r.published_success, r.published_low, r.published_high),
                num(r.published_solved_at), r.verdict, _files(r.source_file)]
               for r in rest.itertuples()]
    counts = tested["verdict"].value_counts()
    return {"note": published.protocol_note(runs) if len(runs) else None,
            "alpha": published.ALPHA, "tested": len(tested),
            "counts": [(v, int(counts.get(v, 0))) for v in published.VERDICTS[:3]],
            "columns": ["op", "[NAU] model", "suite model", "framework", "steps",
                        "this run: successes/runs, rate [95% CI]", "[NAU]: rate [95% CI]",
                        "median solved at (this run)", "median solved at ([NAU])",
                        "p (Fisher, Holm)", "verdict", "[NAU] table"],
            "rows": rows, "numeric": (5, 10),
            "missing": {"columns": ["op", "[NAU] model", "suite model", "[NAU]: rate [95% CI]",
                                    "median solved at ([NAU])", "why no verdict",
                                    "[NAU] table"],
                        "rows": missing, "numeric": (4, 5)}}


def section(task: str, df: pd.DataFrame, curves: pd.DataFrame | None) -> dict:
    out = base_section(task, df, curves)
    out["figures"] += figure(
        "Extrapolation error against input magnitude: median MSE over seeds of the selected "
        "model on inputs U[c, c+w]; the training range is shaded",
        figures.magnitude(labelled(df, out["varying"])))
    single = df[df["param_input_size"] == 2] if "param_input_size" in df else df.iloc[:0]
    out["figures"] += figure(
        "Success rate per unit and interpolation range ([Primer]'s single-module figures): "
        "percent of seeds, one panel per op and framework", figures.range_pairs(single),
        anchor="range-pairs")
    out["figures"] += figure(
        "The explainer's experiment: test l2 loss of every seed per function and unit "
        "(log10; a non-finite loss at the top of its panel), the explainer's figure dashed",
        explainer.distribution(df))
    out["fidelity"] = _fidelity(df)
    out["comparison"] = explainer.claim_table(df)
    return out
