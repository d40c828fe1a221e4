"""One self-contained HTML report (Jinja2, autoescaped, inline CSS) plus the tables beside it."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from reports import frame, stats

TEMPLATES = Path(__file__).with_name("templates")
_ENV = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                   autoescape=select_autoescape(("html", "html.j2"), default=True),
                   trim_blocks=True, lstrip_blocks=True)
_MEDIANS = {"interpolation_mse": "interpolation MSE", "extrapolation_mse": "extrapolation MSE",
            "solved_at": "solved at (step)", "sparsity_error": "sparsity error"}


def _num(value) -> str:
    """%.3g keeps medians spanning many decades readable; a dash where there is none."""
    return "–" if pd.isna(value) else f"{value:.3g}"


def _step(value) -> str:
    """Steps are counts: "1500", not %.3g's "1.5e+03"."""
    return "–" if pd.isna(value) else f"{value:.0f}"


def _rate(rate, low, high) -> str:
    """A rate is meaningless without its interval: "80% [49%, 94%]"."""
    return "–" if pd.isna(rate) else f"{rate:.0%} [{low:.0%}, {high:.0%}]"


def _unique(df: pd.DataFrame, col: str) -> list:
    """Distinct non-missing values of a column that may not exist."""
    return sorted(df[col].dropna().astype(str).unique()) if col in df else []


def _overview(df: pd.DataFrame) -> dict:
    """What was run and where, so that numbers are never read without their context."""
    machine_cols = [c for c in df.columns if c.startswith("machine_")]
    machines = (df[machine_cols].dropna(how="all").astype(str).drop_duplicates()
                .to_dict("records")) if machine_cols else []
    return {
        "runs": len(df), "budgets": _unique(df, "budget"),
        "frameworks": {fw: _unique(df[df["framework"] == fw], f"version_{fw}")
                       for fw in _unique(df, "framework")},
        "versions": {c.removeprefix("version_"): _unique(df, c) for c in ("version_python",
                                                                          "version_numpy")},
        "machines": [{k.removeprefix("machine_"): v for k, v in m.items()} for m in machines],
        "statuses": stats.status_counts(df).to_dict("records") if len(df) else [],
        "corrupt": list(df.attrs.get("corrupt", [])),
    }


def _section(task: str, df: pd.DataFrame) -> dict:
    """One task: its fixed parameters, and per op a summary table split by the varying ones."""
    params = [c for c in df.columns if c.startswith("param_") and c != "param_op"]
    varying = [c for c in ["budget", *params] if df[c].astype(str).nunique() > 1]
    fixed = {c.removeprefix("param_"): df[c].iloc[0] for c in ["budget", *params]
             if c not in varying and df[c].notna().any()}
    table = stats.summary(df, by=("param_op", *varying, "unit", "framework"))
    ops = (table.groupby("param_op", dropna=False, sort=True) if "param_op" in table
           else [("", table)])
    columns = [*(c.removeprefix("param_") for c in varying), "unit", "framework", "runs",
               "success [95% CI]", *_MEDIANS.values(), "diverged"]
    tables = [{"op": "" if pd.isna(op) else op, "columns": columns, "rows": [
        [*(r[c] for c in varying), r["unit"], r["framework"], int(r["runs"]),
         _rate(r["success"], r["success_low"], r["success_high"]),
         *((_step if m == "solved_at" else _num)(r[m]) for m in _MEDIANS), int(r["diverged"])]
        for _, r in rows.iterrows()]} for op, rows in ops]
    return {"task": task, "fixed": fixed, "tables": tables}


def render(df: pd.DataFrame, out_path: str | os.PathLike,
           title: str = "ArithBench report") -> Path:
    """Write the report to out_path and results.csv/.parquet next to it; return the HTML path."""
    out_path = Path(out_path)
    finished = df[df["status"].isin(("ok", "diverged"))] if len(df) else df
    sections = [_section(task, rows.dropna(axis=1, how="all"))
                for task, rows in finished.groupby("task", sort=True)] if len(finished) else []
    html = _ENV.get_template("report.html.j2").render(
        title=title, overview=_overview(df), sections=sections)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(html, encoding="utf-8")
    frame.save(df, out_path.parent)
    return out_path
