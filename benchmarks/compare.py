"""``compare A B``: did anything get significantly worse between two runs of the suite?

Per configuration (task, its parameters, model, framework and budget): success rates side
by side with Fisher's exact test, Holm-corrected over the configurations both runs hold;
median extrapolation errors with a Mann-Whitney test (Holm-corrected the same way); and
B's training throughput over A's. ``--models a,b`` compares two models within one directory
on each configuration both ran. B is compared against A: a significant drop in B's success
rate is a regression (``asv continuous`` in spirit), which the CLI turns into exit status 1.
``--against-baseline`` compares each unit of a new run with every unit of a baseline (e.g.
the published ``reports/baselines/primer.parquet``), cell by cell: same task parameters,
framework and training budget, different models.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.store import check_output
from reports import frame, stats

ALPHA = 0.05
WORSE, BETTER = "worse", "better"
ERROR = "extrapolation_mse"
# A configuration is everything a spec fixes but the seed; the device is left out so that a
# CPU run can be compared with a GPU run of the same work.
CONFIG = ("task", "unit", "framework", "budget", "steps", "batch_size", "lr", "eval_interval",
          "common_data")


# A cell of --against-baseline: a configuration without its model (the models differ) and
# without the learning rate (a unit may train at its own, `Budget.unit_lr`); the task
# parameters (param_*) present on both sides are added.
CELL = ("task", "framework", "budget", "steps", "batch_size", "eval_interval", "common_data")


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
    if path.exists() and not (path.is_dir() or path.suffix == ".parquet"):
        raise CompareError(f"{str(path)!r} is not a results table: give a results directory "
                           f"or a results.parquet (a CSV loses the types compare needs)")
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
    runs = df[df["status"].isin(("ok", "diverged", "error"))]
    _left_out.extend(df.attrs.get("corrupt", []))
    return runs


_left_out: list[str] = []  # the records `_read` left out in this process: `command` exits 1


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


@dataclass
class BaselineComparison:
    """Each unit of NEW against each unit of the baseline on the cells both ran: one row per
    (new unit, cell, baseline unit), Holm-corrected per pair of units."""

    table: pd.DataFrame
    baseline: str
    new: str
    alpha: float = ALPHA
    matched_on: list[str] = field(default_factory=list)  # the key columns of a cell
    unmatched: list[str] = field(default_factory=list)  # param columns of one side only
    only_new: list[str] = field(default_factory=list)  # "unit: cell" with no baseline unit

    def summary(self) -> pd.DataFrame:
        """Per new unit and baseline unit: cells compared, and where the new unit is
        significantly better, worse, or not distinguishable."""
        t = self.table
        out = (t.assign(_better=t["change"].eq(BETTER), _worse=t["change"].eq(WORSE))
               .groupby(["unit", "baseline_unit"], sort=True)
               .agg(cells=("configuration", "size"), better=("_better", "sum"),
                    worse=("_worse", "sum"))
               .reset_index())
        out["same"] = out["cells"] - out["better"] - out["worse"]
        return out


def _wilson(k: int, n: int) -> str:
    """k/n with its 95% Wilson interval: "20/25 80% [61%, 91%]"."""
    low, high = stats.wilson(k, n)
    return f"{_rate(k, n)} [{low:.0%}, {high:.0%}]"


def _values(df: pd.DataFrame, key: str) -> str:
    """The values a key takes, as shown in a message (at most four)."""
    values = sorted(df[key].map(_key).unique())
    return ", ".join(v or "(none)" for v in values[:4]) + (
        f" and {len(values) - 4} more" if len(values) > 4 else "")


def _no_cell_in_common(base: pd.DataFrame, new: pd.DataFrame, keys: list[str],
                       names: tuple[str, str]) -> CompareError:
    """Why no cell matches, by parameter: the keys whose values the two sides never share;
    else NEW's values the baseline lacks; else that the values meet only apart."""
    sets = {k: (set(new[k].map(_key)), set(base[k].map(_key))) for k in keys}
    name = lambda k: k.removeprefix("param_")  # noqa: E731
    apart = [k for k, (mine, theirs) in sets.items() if not mine & theirs]
    lacking = [k for k, (mine, theirs) in sets.items() if mine - theirs]
    if apart:
        why = "; ".join(f"{name(k)}: {_values(new, k)} in NEW, {_values(base, k)} in the "
                        f"baseline" for k in apart)
    elif lacking:
        why = "the baseline has no " + ", no ".join(
            f"{name(k)} " + " or ".join(sorted(sets[k][0] - sets[k][1])[:4]) for k in lacking) \
            + ", and NEW's other values never meet in one of its cells"
    else:
        why = ("each of NEW's values occurs in the baseline, never in the same combination ("
               + ", ".join(name(k) for k in keys) + ")")
    return CompareError(f"{names[1]} shares no cell with the baseline {names[0]}: {why}")


def _defaults_across(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An option a task leaves out of its spec while off (``omitted_when_off``: the static
    task's ``reinit`` and ``protocol``) is a column on one side only when the other side
    never had it on: that side gets the default there too (`frame`'s rule within one table),
    so a run at the default protocol does not match a baseline at another."""
    import tasks

    omitted = {f"param_{key}" for cls in tasks.TASKS.values()
               for key in getattr(cls, "omitted_when_off", ())}
    out = []
    for df, other in ((a, b), (b, a)):
        missing = [c for c in omitted if c in other and c not in df]
        if missing:
            df = df.assign(**{c: pd.Series(np.nan, index=df.index, dtype=object)
                              for c in missing})
            frame._fill_omitted(df)
        out.append(df)
    return out[0], out[1]


def against_baseline(baseline: str | os.PathLike, new: str | os.PathLike,
                     units: list[str] | None = None, alpha: float = ALPHA) -> BaselineComparison:
    """Each unit of run NEW (or those of `units`) against every unit of `baseline`, cell by
    cell: the same task, framework, budget, steps, batch, evaluation interval, data and
    every task parameter (param_* column) both sides have, an option left out of specs at
    its default counting as that default (`_defaults_across`); the models differ, and so may
    the learning rate. Fisher's exact test on success, Holm-corrected over the cells of each
    (new unit, baseline unit) pair, as ``--models`` corrects over its configurations."""
    names = (str(baseline), str(new))
    base, fresh = _read(baseline), _read(new)
    for df, path in ((base, baseline), (fresh, new)):
        if df.empty:  # every record skipped (its framework missing): nothing ran
            raise CompareError(f"{path} holds no finished runs (ok, diverged or error)")
    held = sorted(fresh["unit"].dropna().unique())
    if units is not None:
        for name in units:
            if name not in held:
                raise CompareError(f"unit {name!r} has no finished runs in {new}; it holds: "
                                   f"{', '.join(held) or 'none'}")
        fresh = fresh[fresh["unit"].isin(units)]
    base, fresh = _defaults_across(base, fresh)
    params = lambda df: {c for c in df.columns if c.startswith("param_")}  # noqa: E731
    shared = params(base) & params(fresh)
    keys = [c for c in (*CELL, *sorted(shared)) if c in base and c in fresh]
    unmatched = [f"{c.removeprefix('param_')} (only in {side})"
                 for side, cols in (("the baseline", params(base) - shared),
                                    ("NEW", params(fresh) - shared)) for c in sorted(cols)]
    side_base = {u: _side(rows, keys) for u, rows in base.groupby("unit", sort=True)}
    side_new = {u: _side(rows, keys) for u, rows in fresh.groupby("unit", sort=True)}
    indexes = [s.index for s in (*side_base.values(), *side_new.values())]
    cells = indexes[0]
    for index in indexes[1:]:  # labels name what varies over both sides
        cells = cells.union(index)
    labels = dict(zip(cells, _label(cells.to_frame(index=False), keys)))
    parts, only_new = [], []
    for unit, mine in side_new.items():
        matched: set = set()
        for other, theirs in side_base.items():
            both = theirs.merge(mine, how="inner", left_index=True, right_index=True,
                                suffixes=("_a", "_b"))
            if both.empty:
                continue
            matched.update(both.index)
            part = _table(both.reset_index(), [labels[k] for k in both.index], alpha)
            parts.append(part.assign(unit=unit, baseline_unit=other))
        only_new += [f"{unit}: {labels[k]}" for k in mine.index if k not in matched]
    if not parts:
        raise _no_cell_in_common(base, fresh, keys, names)
    table = pd.concat(parts, ignore_index=True)
    for s in ("a", "b"):
        table[f"wilson_{s}"] = [stats.wilson(k, n) for k, n in
                                zip(table[f"successes_{s}"], table[f"runs_{s}"])]
    table = table.sort_values(["unit", "configuration", "baseline_unit"],
                              kind="stable").reset_index(drop=True)
    return BaselineComparison(table, *names, alpha, keys, unmatched, only_new)


def _shown_baseline(cmp: BaselineComparison) -> pd.DataFrame:
    """One row per cell and baseline unit: the new unit's success beside that unit's."""
    t = cmp.table
    return pd.DataFrame({
        "cell": t["configuration"], "new unit": t["unit"],
        "new success [95% Wilson]": [_wilson(k, n) for k, n in
                                     zip(t["successes_b"], t["runs_b"])],
        "baseline unit": t["baseline_unit"],
        "baseline success [95% Wilson]": [_wilson(k, n) for k, n in
                                          zip(t["successes_a"], t["runs_a"])],
        "p (Holm)": t["p_holm"].map("{:.3g}".format), "new is": t["change"]})


def baseline_verdicts(cmp: BaselineComparison) -> list[str]:
    """A line per new unit and baseline unit: in how many cells the new one is significantly
    better, worse, or not distinguishable, and the test."""
    return [f"{r.unit} against {r.baseline_unit}: better in {r.better}, worse in {r.worse}, "
            f"not distinguishable in {r.same} of {r.cells} cells (Fisher's exact test on "
            f"success, Holm-corrected over the {r.cells} cells, alpha {cmp.alpha:g})"
            for r in cmp.summary().itertuples()]


def _baseline_notes(cmp: BaselineComparison) -> list[str]:
    """What a cell is, what was not matched, and NEW's cells no baseline unit ran."""
    lines = ["cells match on " + ", ".join(k.removeprefix("param_") for k in cmp.matched_on)
             + " (not the model, nor the learning rate)"]
    if cmp.unmatched:
        lines.append("not matched on (a parameter one side lacks): " + ", ".join(cmp.unmatched))
    if cmp.only_new:
        lines.append(f"only in NEW, no baseline unit ran it, not compared: "
                     f"{', '.join(cmp.only_new)}")
    return lines


def baseline_text(cmp: BaselineComparison) -> str:
    """The table as printed, cell by cell, then the notes and a verdict per pair of units."""
    shown = _shown_baseline(cmp)
    for col in ("cell", "new unit", "baseline unit"):
        shown[col] = shown[col].str.ljust(shown[col].str.len().max())
    with pd.option_context("display.width", 250, "display.max_rows", 100_000,
                           "display.max_colwidth", 160):
        body = shown.to_string(index=False)
    return "\n".join([f"baseline = {cmp.baseline}", f"NEW = {cmp.new}", body,
                      *_baseline_notes(cmp), *baseline_verdicts(cmp)])


def write_baseline_html(cmp: BaselineComparison, path: str | os.PathLike) -> Path:
    """The same table as a self-contained HTML page, the new unit's wins and losses shaded."""
    from reports import html

    shown = _shown_baseline(cmp)
    return html.render_table(
        path, "ArithBench compare against the baseline",
        [f"baseline = {cmp.baseline}", f"NEW = {cmp.new}", *_baseline_notes(cmp),
         *baseline_verdicts(cmp), "Success: runs that ended ok and succeeded, out of the ok, "
         "diverged and error runs."],
        list(shown.columns), shown.values.tolist(), list(cmp.table["change"]))


def command(results: list[str], pair: str | None = None, output: str | None = None,
            alpha: float = ALPHA, against: bool = False, units: str | None = None) -> int:
    """``compare A B``, ``compare DIR --models a,b`` or ``compare BASELINE NEW
    --against-baseline [--units u]``: print the table (and write it as HTML to `output`); 1
    when a configuration got significantly worse in B, else 0 (always 0 against a baseline:
    a new unit that loses to a published one is a finding, not a regression); 1 also when a
    record was left out as untrusted (each is named on stderr), as `report` does. An
    ``output`` that would overwrite an input, or a file that is not a compare page, is
    refused first (`benchmarks.store.check_output`)."""
    if not 0 < alpha < 1:
        raise CompareError(f"bad --alpha {alpha}; expected a number between 0 and 1")
    if output:
        check_output(output, results, "ArithBench compare")
    _left_out.clear()
    if units is not None and not against:
        raise CompareError("--units selects NEW's units for --against-baseline; add it, or "
                           "use --models a,b to compare two models within one directory")
    if against:
        if pair is not None:
            raise CompareError("--against-baseline compares NEW's units with every unit of "
                               "the baseline; drop --models")
        if len(results) != 2:
            raise CompareError(f"--against-baseline expects BASELINE NEW (a published "
                               f"results.parquet or a results directory, then the new run); "
                               f"got {len(results)}: {' '.join(results)}")
        wanted = None
        if units is not None:
            wanted = [n.strip() for n in units.split(",") if n.strip()]
            if not wanted:
                raise CompareError(f"bad --units {units!r}; expected e.g. nau or nau,nmu")
        found = against_baseline(*results, units=wanted, alpha=alpha)
        print(baseline_text(found))
        _write(write_baseline_html, found, output)
        return 1 if _left_out else 0
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
    _write(write_html, cmp, output)
    return 1 if len(cmp.worse) or _left_out else 0


def _write(writer, result, output: str | None) -> None:
    """The HTML page of a comparison, where one is asked for, written atomically; a path
    that cannot be written is a WriteError naming it (exit 1)."""
    if output:
        print(f"written to {writer(result, output)}")
