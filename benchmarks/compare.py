"""``compare A B``: did anything get significantly worse between two runs of the suite?

Per configuration (task, its parameters, model, framework and budget): success rates side
by side with Fisher's exact test, Holm-corrected over the configurations both runs hold;
median extrapolation errors with a Mann-Whitney test (Holm-corrected the same way); and
B's training throughput over A's. ``--models a,b`` compares two models within one directory
on each configuration both ran. B is compared against A: a significant drop in B's success
rate is a regression (``asv continuous`` in spirit), which the CLI turns into exit status 1.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reports import frame, stats

ALPHA = 0.05
WORSE, BETTER = "worse", "better"
ERROR = "extrapolation_mse"
# A configuration is everything a spec fixes but the seed; the device is left out so that a
# CPU run can be compared with a GPU run of the same work.
CONFIG = ("task", "unit", "framework", "budget", "steps", "batch_size", "lr", "eval_interval",
          "common_data")


class CompareError(ValueError):
    """Nothing to compare: the message names the directories or models and what they hold."""


@dataclass
class Comparison:
    """The per-configuration table, what A and B are, and the test's level."""

    table: pd.DataFrame
    a: str
    b: str
    alpha: float = ALPHA
    only_a: list[str] = field(default_factory=list)  # configurations with no runs in B
    only_b: list[str] = field(default_factory=list)

    @property
    def worse(self) -> pd.DataFrame:
        """The configurations whose success rate dropped significantly from A to B."""
        return self.table[self.table["change"] == WORSE]


def _read(directory: str | os.PathLike) -> pd.DataFrame:
    """The runs of a results directory that count: ok, diverged and error (a failure, so a
    change that makes a configuration crash is a drop); skipped runs never ran."""
    path = Path(directory)
    if not (path.is_dir() or (path.suffix == ".parquet" and path.is_file())):
        raise CompareError(f"results directory {str(path)!r} does not exist (a saved table: "
                           f"an existing results.parquet, e.g. a published baseline)")
    try:
        df = frame.load(path)
    except ValueError as err:  # a parquet file that is not a results table
        raise CompareError(str(err)) from None
    for line in df.attrs.get("corrupt", []):  # unreadable or malformed: said, not compared
        print(f"left out: {line}", file=sys.stderr)
    if df.empty:
        raise CompareError(f"results directory {str(path)!r} holds no records")
    return df[df["status"].isin(("ok", "diverged", "error"))]


def _keys(df: pd.DataFrame, drop: tuple[str, ...] = ()) -> list[str]:
    """The configuration columns present in df (task parameters included)."""
    params = sorted(c for c in df.columns if c.startswith("param_"))
    return [c for c in (*CONFIG, *params) if c in df and c not in drop]


def _key(value) -> str:
    """A configuration value as text that is the same in every directory: a column shared
    with another task's rows is float (100.0), and missing is empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _side(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per configuration: runs, successes, the errors (for the rank test), throughput."""
    column = lambda name: (df[name] if name in df  # noqa: E731  (error runs have no metrics)
                           else pd.Series(np.nan, index=df.index, dtype=object))
    won = df["status"].eq("ok") & column("success").astype("boolean").fillna(False).astype(bool)
    errors, speed = column(ERROR).astype(float), column("seed_steps_per_s").astype(float)
    rows = df[keys].map(_key).assign(_won=won, _err=errors.where(df["status"].eq("ok"),
                                                                   np.inf), _speed=speed)
    return rows.groupby(keys, sort=True).agg(
        runs=("_won", "size"), successes=("_won", "sum"), errors=("_err", list),
        speed=("_speed", "median"))


def _label(table: pd.DataFrame, keys: list[str]) -> pd.Series:
    """"static_arithmetic add input_size=2 nau torch": the task, its op, the other keys that
    vary between the configurations compared, the model and the framework."""
    named = ("task", "param_op", "unit", "framework")
    others = [k for k in keys if k not in named]
    task = table["task"] if "task" in table else pd.Series("", index=table.index)
    # a key is shown where it varies among the configurations of the row's own task
    varies = {t: {k for k in others if rows[k].nunique() > 1}
              for t, rows in table.groupby(task, sort=False)}
    labels = []
    for i, row in table.iterrows():
        parts = [row[k] for k in ("task", "param_op") if k in keys]
        parts += [f"{k.removeprefix('param_')}={row[k]}" for k in others
                  if k in varies[task[i]] and row[k] != ""]
        parts += [row[k] for k in ("unit", "framework") if k in keys]
        labels.append(" ".join(v for v in parts if v))
    return pd.Series(labels, index=table.index)


def _compare(a: pd.DataFrame, b: pd.DataFrame, keys: list[str], names: tuple[str, str],
             alpha: float) -> Comparison:
    """A and B joined on the configurations both hold, with the tests and the verdicts; the
    configurations only one side holds are named."""
    side_a, side_b = _side(a, keys), _side(b, keys)
    union = side_a.index.union(side_b.index)  # labels name what varies over both sides
    labels = dict(zip(union, _label(union.to_frame(index=False), keys)))
    alone = [[labels[k] for k in s.index.difference(other.index)]
             for s, other in ((side_a, side_b), (side_b, side_a))]
    both = side_a.merge(side_b, how="inner", left_index=True, right_index=True,
                        suffixes=("_a", "_b"))
    table = _table(both.reset_index(), [labels[k] for k in both.index], alpha)
    return Comparison(table, *names, alpha, *alone)


def _table(both: pd.DataFrame, labels: list[str], alpha: float) -> pd.DataFrame:
    """The tests and the verdicts per configuration of A and B side by side."""
    out = pd.DataFrame({"configuration": labels}, index=both.index)
    for s in ("a", "b"):
        out[f"runs_{s}"] = both[f"runs_{s}"].astype(int)
        out[f"successes_{s}"] = both[f"successes_{s}"].astype(int)
        out[f"success_{s}"] = out[f"successes_{s}"] / out[f"runs_{s}"]
        out[f"median_{s}"] = [float(np.median(e)) for e in both[f"errors_{s}"]]
    out["p"] = [stats.fisher(r.successes_a, r.runs_a, r.successes_b, r.runs_b)
                for r in out.itertuples()]
    out["p_holm"] = stats.holm(out["p"])
    out["p_error"] = [stats.mann_whitney(ea, eb)
                      for ea, eb in zip(both["errors_a"], both["errors_b"])]
    out["p_error_holm"] = stats.holm(out["p_error"])
    out["throughput_ratio"] = (both["speed_b"] / both["speed_a"]).to_numpy()
    significant = out["p_holm"] < alpha
    out["change"] = np.where(significant & (out["success_b"] < out["success_a"]), WORSE,
                             np.where(significant, BETTER, ""))
    moved = out["p_error_holm"] < alpha
    out["error_change"] = np.where(moved & (out["median_b"] > out["median_a"]), "higher",
                                   np.where(moved, "lower", ""))
    return out.sort_values(["change", "configuration"], ascending=[False, True],
                           kind="stable").reset_index(drop=True)


def directories(a: str | os.PathLike, b: str | os.PathLike, alpha: float = ALPHA) -> Comparison:
    """Run A against run B, configuration by configuration."""
    da, db = _read(a), _read(b)
    keys = sorted(set(_keys(da)) & set(_keys(db)), key=[*_keys(da)].index)
    cmp = _compare(da, db, keys, (str(a), str(b)), alpha)
    if cmp.table.empty:
        raise CompareError(f"{a} and {b} share no configuration (task, parameters, model, "
                           f"framework, budget); nothing to compare")
    return cmp


def models(directory: str | os.PathLike, first: str, second: str,
           alpha: float = ALPHA) -> Comparison:
    """Model `second` against model `first` on each configuration of one directory that
    both ran: is the second better than the first here, or is that noise?"""
    df = _read(directory)
    held = sorted(df["unit"].dropna().unique())
    for name in (first, second):
        if name not in held:
            raise CompareError(f"model {name!r} has no finished runs in {directory}; "
                               f"it holds: {', '.join(held)}")
    keys = _keys(df, drop=("unit",))
    cmp = _compare(df[df["unit"] == first], df[df["unit"] == second], keys, (first, second),
                   alpha)
    if cmp.table.empty:
        raise CompareError(f"{first} and {second} share no configuration in {directory}")
    return cmp


def _rate(k: int, n: int) -> str:
    return f"{k}/{n} {k / n:.0%}"


def _shown(cmp: Comparison) -> pd.DataFrame:
    """The table as people read it: counts and rates, p-values to three digits."""
    t = cmp.table
    g = "{:.3g}".format
    return pd.DataFrame({
        "configuration": t["configuration"],
        "A success": [_rate(k, n) for k, n in zip(t["successes_a"], t["runs_a"])],
        "B success": [_rate(k, n) for k, n in zip(t["successes_b"], t["runs_b"])],
        "p (Holm)": t["p_holm"].map(g), "change": t["change"],
        "A median error": t["median_a"].map(g), "B median error": t["median_b"].map(g),
        "p error (Holm)": t["p_error_holm"].map(g), "error": t["error_change"],
        "B/A seed-steps/s": t["throughput_ratio"].map("{:.2f}".format)})


def verdict(cmp: Comparison) -> str:
    """One line: which configurations got significantly worse, or that none did."""
    n = len(cmp.table)
    test = f"Fisher's exact test, Holm-corrected over {n}, alpha {cmp.alpha:g}"
    if len(cmp.worse):
        return (f"{len(cmp.worse)} of {n} configurations significantly worse in B ({test}): "
                + ", ".join(cmp.worse["configuration"]))
    return f"no configuration significantly worse in B ({n} compared; {test})"


def _alone(cmp: Comparison) -> list[str]:
    """A line for each side's configurations the other has no runs of."""
    return [f"only in {side} ({name}), not compared: {', '.join(labels)}"
            for side, name, labels in (("A", cmp.a, cmp.only_a), ("B", cmp.b, cmp.only_b))
            if labels]


def text(cmp: Comparison) -> str:
    """The table as printed: one line per configuration, regressions first."""
    shown = _shown(cmp)
    width = shown["configuration"].str.len().max()
    shown["configuration"] = shown["configuration"].str.ljust(width)  # left-aligned
    with pd.option_context("display.width", 250, "display.max_rows", 10_000,
                           "display.max_colwidth", 120):
        body = shown.to_string(index=False)
    return "\n".join([f"A = {cmp.a}", f"B = {cmp.b}", body, *_alone(cmp), verdict(cmp)])


def write_html(cmp: Comparison, path: str | os.PathLike) -> Path:
    """The same table as a self-contained HTML page, regressions shaded."""
    from reports import html

    shown = _shown(cmp)
    return html.render_table(
        path, "ArithBench compare", [f"A = {cmp.a}", f"B = {cmp.b}", verdict(cmp), *_alone(cmp),
                                     "Success: runs that ended ok and succeeded, out of the "
                                     "ok, diverged and error runs. Error: median extrapolation "
                                     "MSE (a diverged or failed run counts as the worst), "
                                     "Mann-Whitney U test, Holm-corrected."],
        list(shown.columns), shown.values.tolist(), list(cmp.table["change"]))


def command(results: list[str], pair: str | None = None, output: str | None = None,
            alpha: float = ALPHA) -> int:
    """``compare A B`` or ``compare DIR --models a,b``: print the table (and write it as HTML
    to `output`); 1 when a configuration got significantly worse in B, else 0."""
    if not 0 < alpha < 1:
        raise CompareError(f"bad --alpha {alpha}; expected a number between 0 and 1")
    if output and Path(output).is_dir():
        raise CompareError(f"-o {output!r} is a directory; name the HTML file to write")
    if pair is not None:
        names = [n.strip() for n in pair.split(",")]
        if len(names) != 2 or not all(names) or names[0] == names[1]:
            raise CompareError(f"bad --models {pair!r}; expected two different models, e.g. "
                               f"nau,nac")
        if len(results) != 1:
            raise CompareError(f"--models compares within one results directory; got "
                               f"{len(results)}: {' '.join(results)}")
        cmp = models(results[0], *names, alpha=alpha)
    elif len(results) != 2:
        raise CompareError(f"expected two results directories A B (or one with --models a,b); "
                           f"got {len(results)}: {' '.join(results)}")
    else:
        cmp = directories(*results, alpha=alpha)
    print(text(cmp))
    if output:
        try:
            print(f"written to {write_html(cmp, output)}")
        except OSError as err:
            raise CompareError(f"cannot write {output!r}: {err.strerror or err}") from None
    return 1 if len(cmp.worse) else 0
