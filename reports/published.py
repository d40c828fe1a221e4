"""The published [NAU] static results (published.csv) and this run's fidelity to them.

Every static_arithmetic row of published.csv (column ``task``) is one (op, model) cell of
[NAU]'s static tables, read from the stable-nalu repository's
``paper/results/function_task_static*.tex`` (named per row in ``source_file``); ``unit`` is
the suite's model for it, empty where the suite has none. The sequential_mnist rows are
[NAU]'s sequential MNIST success rates per operation, model and test lengths (``length``),
read off its figures (docs/sequential-mnist-protocol.md).
``python -m reports.published RESULTS_DIR`` prints the fidelity table as Markdown.
"""
from __future__ import annotations

import argparse
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from reports import stats

CSV = Path(__file__).with_name("published.csv")
TASK = "static_arithmetic"
ALPHA = 0.05
AGREES, DIFFERS, SHORT = "agrees", "differs", "budget too short"
NOT_RUN, NOT_IN_SUITE = "not run", "not in the suite"
VERDICTS = (AGREES, DIFFERS, SHORT, NOT_RUN, NOT_IN_SUITE)
KEYS = ("param_op", "unit", "framework")
# Run columns compared with the published protocol, and how the note names them.
_PROTOCOL = {"steps": "{:,.0f} steps", "lr": "lr {:g}", "batch_size": "batch {:.0f}",
             "param_input_size": "input_size {}", "param_interpolation_range": "train {}",
             "param_extrapolation_range": "test {}"}


@cache
def _table() -> pd.DataFrame:
    """Read once per process; callers get a copy."""
    return pd.read_csv(CSV, dtype={"input_size": str, "unit": str, "length": str},
                       keep_default_na=False,
                       na_values={c: [""] for c in ("success_low", "success_high", "solved_at",
                                                    "sparsity_error")})


def table(task: str = TASK) -> pd.DataFrame:
    """published.csv's rows of ``task``: for the static task one row per (op, model) with
    the suite's unit ("" if none) and source; for sequential_mnist one per (op, model,
    lengths), read off [NAU]'s figures (``verified`` false, the reading in ``note``)."""
    df = _table()
    return df[df["task"] == task].reset_index(drop=True)


def _same(values: pd.Series, default) -> pd.Series:
    """Numbers compared as numbers (100 == 100.0), anything else in frame.readable() form."""
    from reports.frame import readable

    if isinstance(default, (int, float)) and not isinstance(default, bool):
        return pd.to_numeric(values, errors="coerce").eq(default)
    return values.astype(str).eq(str(readable(default)))


def at_published_config(df: pd.DataFrame) -> pd.DataFrame:
    """The static task's finished runs whose task parameters, op aside, are the task's
    defaults: the published protocol's configuration (the training budget may differ, and
    protocol_note says how)."""
    import tasks

    if df.empty or "task" not in df:
        return df.iloc[0:0]
    rows = df[df["task"].eq(TASK) & df["status"].isin(("ok", "diverged"))]
    for key, default in tasks.TASKS[TASK].parameters.items():
        col = f"param_{key}"
        if key != "op" and col in rows:  # missing: an option left out of the spec while off
            rows = rows[rows[col].isna() | _same(rows[col], default)]
    return rows


def budget_limited(df: pd.DataFrame) -> pd.Series:
    """Per run: at the published configuration, with fewer steps than [NAU]'s median
    solved-at step for its op and model, so a failure may be the budget's."""
    out = pd.Series(False, index=df.index)
    runs = at_published_config(df)
    if runs.empty:
        return out
    solved = table().dropna(subset=["solved_at"]).query("unit != ''")
    solved = solved.set_index(["op", "unit"])["solved_at"]
    keys = pd.MultiIndex.from_arrays([runs["param_op"], runs["unit"]])
    median = pd.Series(solved.reindex(keys).to_numpy(), index=runs.index)
    out.loc[runs.index] = (runs["steps"].astype(float) < median).fillna(False).astype(bool)
    return out


def _verdict(row, alpha: float) -> str:
    """A lower rate than published, on a budget shorter than the published median solved-at
    step, is the budget's; a higher rate is a difference whatever the budget."""
    if not row.unit:
        return NOT_IN_SUITE
    if not row.runs > 0:
        return NOT_RUN
    if not row.p_holm < alpha:
        return AGREES
    return SHORT if row.budget_limited and row.success < row.published_success else DIFFERS


def fidelity(df: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Every published cell beside this run's rate at the same configuration, per framework
    and number of steps: Fisher's exact test of this run's successes against the published
    count out of the published seeds, Holm-corrected over the cells tested, and a verdict
    (VERDICTS). Cells with runs first, in published.csv's order."""
    pub = table().reset_index(names="_order")
    ours = stats.summary(at_published_config(df), by=(*KEYS, "steps"))
    ours = ours.rename(columns={"param_op": "op"})
    ours["successes"] = (ours["success"] * ours["runs"]).round()
    pub = pub.rename(columns={"success": "published_success", "success_low": "published_low",
                              "success_high": "published_high",
                              "solved_at": "published_solved_at", "steps": "published_steps"})
    cols = ["op", "unit", "framework", "steps", "runs", "successes", "success", "success_low",
            "success_high", "solved_at"]
    out = pub.merge(ours.reindex(columns=cols), on=["op", "unit"], how="left")
    out["published_successes"] = (out["published_success"] * out["seeds"]).round()
    out["p"] = [stats.fisher(int(r.successes), int(r.runs), int(r.published_successes),
                             int(r.seeds)) if r.runs > 0 else np.nan
                for r in out.itertuples()]
    out["p_holm"] = stats.holm(out["p"])
    out["budget_limited"] = (out["steps"] < out["published_solved_at"]).fillna(False)
    out["verdict"] = [_verdict(r, alpha) for r in out.itertuples()]
    out = out.assign(_untested=out["runs"].isna()).sort_values(
        ["_untested", "_order", "framework", "steps"], kind="stable")
    return out.drop(columns=["_untested", "_order"]).reset_index(drop=True)


def _values(df: pd.DataFrame, col: str) -> str:
    """The distinct values of a column as the note writes them ("20,000 / 5,000 steps")."""
    return " / ".join(_PROTOCOL[col].format(v) for v in pd.unique(df[col].dropna()))


def _differs(df: pd.DataFrame, col: str, ref) -> bool:
    """Ranges are compared in readable() form, numbers as numbers."""
    values = df[col].dropna()
    same = values.astype(str).eq(str(ref)) if col.startswith("param_") else values.eq(ref)
    return not same.all()


def protocol_note(df: pd.DataFrame) -> str | None:
    """Why this run's numbers may differ from the paper's; None when the protocol is the same."""
    ref = table().rename(columns=lambda c: f"param_{c}" if f"param_{c}" in _PROTOCOL else c).iloc[0]
    differ = [c for c in _PROTOCOL if c in df and _differs(df, c, ref[c])]
    budgets = sorted(df["budget"].dropna().astype(str).unique())
    shared = "common_data" in df and df["common_data"].fillna(False).astype(bool).any()
    if not differ and budgets == ["paper"] and not shared:
        return None
    shown = ["steps", "lr", *(c for c in differ if c not in ("steps", "lr"))]
    seeds = df.groupby(list(KEYS), dropna=False)["seed"].nunique().max()
    ours = [f"{'/'.join(budgets)} budget", *(_values(df, c) for c in shown), f"{seeds} seeds",
            *(["seeds sharing their batches (--common-data)"] if shared else [])]
    theirs = [*(_PROTOCOL[c].format(ref[c]) for c in shown), f"{ref['seeds']} seeds"]
    return (f"Protocol differs: this run: {', '.join(ours)}; published: {', '.join(theirs)}. "
            "Compare with care.")


def _pct(rate, low=np.nan, high=np.nan) -> str:
    if pd.isna(rate):
        return "–"
    return f"{rate:.0%}" if pd.isna(low) else f"{rate:.0%} [{low:.0%}, {high:.0%}]"


def markdown(fid: pd.DataFrame) -> str:
    """The fidelity table as Markdown (docs/results.md): the cells with a verdict, then one
    line each for the published cells not run and those whose model the suite lacks."""
    head = ("| op | [NAU] model | suite model | framework | steps | this run | [NAU] (100 seeds) "
            "| [NAU] median solved at | p (Holm) | verdict |\n|" + "---|" * 10)
    tested = fid[fid["runs"].notna()]
    lines = [head, *(f"| {r.op} | {r.model} | {r.unit} | {r.framework} | {r.steps:,.0f} | "
                     f"{int(r.successes)}/{int(r.runs)} = {_pct(r.success)} | "
                     f"{_pct(r.published_success, r.published_low, r.published_high)} | "
                     f"{'–' if pd.isna(r.published_solved_at) else f'{r.published_solved_at:.1e}'}"
                     f" | {r.p_holm:.2g} | {r.verdict} |" for r in tested.itertuples())]
    for verdict in (NOT_RUN, NOT_IN_SUITE):
        rest = fid[fid["verdict"] == verdict]
        if len(rest):
            cells = "; ".join(
                op + " " + ", ".join(f"{m}{f' ({u})' if u else ''} {_pct(s)}" for m, u, s
                                     in zip(g["model"], g["unit"], g["published_success"]))
                for op, g in rest.groupby("op", sort=False))
            lines.append(f"\n{verdict.capitalize()}: {cells}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print a results directory's fidelity table as Markdown."""
    from reports import frame

    parser = argparse.ArgumentParser(prog="python -m reports.published", description=main.__doc__)
    parser.add_argument("results", help="results directory")
    args = parser.parse_args(argv)
    if not Path(args.results).is_dir():
        print(f"{parser.prog}: error: results directory {args.results!r} does not exist",
              file=sys.stderr)
        return 2
    df = frame.load(args.results)
    runs = at_published_config(df)
    note = protocol_note(runs) if len(runs) else None
    print(markdown(fidelity(df)) + (f"\n{note}\n" if note else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
