"""The static task's section: the base one, error against input magnitude, and the
published [NAU] numbers beside this run's."""
from __future__ import annotations

import pandas as pd

from reports import figures, published
from reports.html import base_section, figure, labelled, num, rate, step_text


def _comparison(df: pd.DataFrame) -> dict | None:
    """The published [NAU] numbers beside this run's, for the same op and model."""
    both = published.compare(df)
    if both.empty:
        return None
    rows = [[r.param_op, r.unit, r.framework, int(r.runs),
             rate(r.success, r.success_low, r.success_high),
             rate(r.success_published, r.success_low_published, r.success_high_published),
             step_text(r.solved_at), num(r.solved_at_published),
             num(r.sparsity_error), num(r.sparsity_error_published),
             f"{r.source}{'' if r.verified else ' (not verified)'}"] for r in both.itertuples()]
    return {"note": published.protocol_note(df), "rows": rows, "numeric": (4, 10),
            "columns": ["op", "unit", "framework", "runs", "success (this run)",
                        "success (published)", "solved at (this run)", "solved at (published)",
                        "sparsity error (this run)", "sparsity error (published)", "source"]}


def section(task: str, df: pd.DataFrame, curves: pd.DataFrame | None) -> dict:
    out = base_section(task, df, curves)
    out["figures"] += figure(
        "Extrapolation error against input magnitude: median MSE over seeds of the selected "
        "model on inputs U[c, c+w]; the training range is shaded",
        figures.magnitude(labelled(df, out["varying"])))
    out["comparison"] = _comparison(df)
    return out
