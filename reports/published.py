"""Published results (published.csv) beside this run's, with the protocol differences said."""
from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

from reports import stats

CSV = Path(__file__).with_name("published.csv")
KEYS = ("param_op", "unit", "framework")
# Run columns compared with the published protocol, and how the note names them.
_PROTOCOL = {"steps": "{:,.0f} steps", "lr": "lr {:g}", "batch_size": "batch {:.0f}",
             "param_input_size": "input_size {}", "param_interpolation_range": "train {}",
             "param_extrapolation_range": "test {}"}


@cache
def _table() -> pd.DataFrame:
    """Read once per process; callers get a copy."""
    return pd.read_csv(CSV, dtype={"input_size": str})


def table() -> pd.DataFrame:
    """published.csv: one row per (op, unit) with its source and whether it was verified."""
    return _table().copy()


def compare(df: pd.DataFrame) -> pd.DataFrame:
    """This run's summary per op, model and framework joined with the published row."""
    ours = stats.summary(df, by=KEYS)
    pub = table().rename(columns={"op": "param_op"})
    return ours.merge(pub, on=["param_op", "unit"], suffixes=("", "_published"))


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
    if not differ and budgets == ["paper"]:
        return None
    shown = ["steps", "lr", *(c for c in differ if c not in ("steps", "lr"))]
    seeds = df.groupby(list(KEYS), dropna=False)["seed"].nunique().max()
    ours = [f"{'/'.join(budgets)} budget", *(_values(df, c) for c in shown), f"{seeds} seeds"]
    theirs = [*(_PROTOCOL[c].format(ref[c]) for c in shown), f"{ref['seeds']} seeds"]
    return (f"Protocol differs: this run: {', '.join(ours)}; published: {', '.join(theirs)}. "
            "Compare with care.")
