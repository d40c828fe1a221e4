"""Seaborn/matplotlib figures as PNG bytes (Agg, every figure closed), for the HTML report.

Every function takes tidy frames (reports.frame / reports.stats) and returns PNG bytes, or
None when there is nothing to draw; missing or non-finite values never raise.
"""
from __future__ import annotations

import base64
import io
import textwrap
from contextlib import contextmanager
from itertools import chain

import matplotlib

matplotlib.use("Agg")  # no display, no window: a report is rendered on servers and in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from reports import frame  # noqa: E402

DPI = 80
# The page's text column (72rem less padding, about 1120 px) at DPI: no figure is wider, so
# none is scaled down in the page and every label keeps its size.
PAGE_INCHES = 14.0
MAX_POINTS = 200  # per line: more is invisible at this size and slows rendering
_STYLES = {"torch": "-", "tf": "--"}


def data_uri(png: bytes) -> str:
    """Embedded in the page, so the report makes no request of any kind."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@contextmanager
def _figure(nrows: int, ncols: int, width: float = 4.0, height: float = 3.0,
            bottom: float = 0.6, left: float = 0.85, row_gap: float | None = None, **kw):
    """A grid of axes that is closed however drawing ends, so figures never pile up.

    Margins are fixed in inches (bottom: room for rotated labels; row_gap: between rows of
    panels, room for their labels and the next title): a layout engine would lay out every
    tick label once more, a third of the report's time."""
    w, h = min(width * ncols, PAGE_INCHES), height * nrows
    hspace = 0.4
    if row_gap is not None and nrows > 1:  # matplotlib's gap is a fraction of a panel
        panel = (h - bottom - 0.35 - row_gap * (nrows - 1)) / nrows
        hspace = row_gap / panel
    grid = dict(left=left / w, right=1 - 0.15 / w, bottom=bottom / h, top=1 - 0.35 / h,
                wspace=0.3, hspace=hspace)
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(nrows, ncols, squeeze=False, dpi=DPI, figsize=(w, h),
                                 gridspec_kw=grid, **kw)
    try:
        yield fig, axes
    finally:
        plt.close(fig)


def _png(fig) -> bytes:
    """The figure as PNG bytes; fast zlib, since the report's time is mostly drawing."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", pil_kwargs={"compress_level": 3})
    return buf.getvalue()


def _wrap(panels: int, width: float) -> tuple[int, int]:
    """Rows and columns for `panels` panels of `width` inches within the page's width."""
    ncols = max(1, min(panels, int(PAGE_INCHES // width)))
    return -(-panels // ncols), ncols


def _spare(axes, used: int) -> None:
    """Panels past the last one a wrapped grid needs are hidden."""
    for ax in axes.flat[used:]:
        ax.set_visible(False)


def _no_data(ax, what: str = "no finite values") -> None:
    """An empty panel says why it is empty."""
    ax.text(0.5, 0.5, what, transform=ax.transAxes, ha="center", va="center", color="0.4")


def _positive(values) -> np.ndarray:
    """Log axes: zero, negative and non-finite errors become gaps, not warnings."""
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def _ops(df: pd.DataFrame) -> list:
    """Panels per op; a task without ops is one panel."""
    return sorted(df["param_op"].dropna().unique()) if "param_op" in df else [None]


def _rows_of(df: pd.DataFrame, op):
    """The rows of one op panel."""
    return df if op is None or "param_op" not in df else df[df["param_op"] == op]


def _thin(steps: np.ndarray) -> np.ndarray:
    """At most MAX_POINTS evenly spread steps, the last one kept."""
    if len(steps) <= MAX_POINTS:
        return steps
    return steps[np.unique(np.linspace(0, len(steps) - 1, MAX_POINTS).round().astype(int))]


def _palette(units) -> dict:
    """One colour per model, the same in every panel of a figure."""
    units = sorted(set(units))
    return dict(zip(units, sns.color_palette("colorblind", max(len(units), 1))))


def _bars(ax, table: pd.DataFrame, value: str, low: str | None = None,
          high: str | None = None, label: str = "unit", horizontal: bool = False) -> None:
    """Grouped bars (label on x, or on y top down when horizontal; one bar per framework)
    with optional asymmetric error bars."""
    labels, fws = sorted(table[label].unique()), sorted(table["framework"].unique())
    width = 0.8 / max(len(fws), 1)
    colours = dict(zip(fws, sns.color_palette("deep", len(fws))))
    for i, fw in enumerate(fws):
        rows = table[table["framework"] == fw].set_index(label).reindex(labels)
        x = np.arange(len(labels)) + (i - (len(fws) - 1) / 2) * width
        v = rows[value].astype(float).to_numpy()
        err = None if low is None else np.abs(np.vstack([v - rows[low].astype(float),
                                                         rows[high].astype(float) - v]))
        if horizontal:
            ax.barh(x, np.nan_to_num(v), width, xerr=err, capsize=2, color=colours[fw],
                    label=fw)
        else:
            ax.bar(x, np.nan_to_num(v), width, yerr=err, capsize=3, color=colours[fw], label=fw)
    if horizontal:
        ax.set_yticks(np.arange(len(labels)), labels)
        ax.set_ylim(len(labels) - 0.5, -0.5)  # the first label at the top
    else:
        ax.set_xticks(np.arange(len(labels)), labels, rotation=30, ha="right")


def success_rates(summary: pd.DataFrame) -> bytes | None:
    """Success rate with its 95% Wilson interval per model and framework, one panel per op."""
    if summary.empty:
        return None
    ops = _ops(summary)
    with _figure(*_wrap(len(ops), 4.0), bottom=0.9, sharey=True) as (fig, axes):
        for ax, op in zip(axes.flat, ops):
            _bars(ax, _rows_of(summary, op), "success", "success_low", "success_high")
            ax.set(title=f"op: {op}" if op else "", ylim=(0, 1.05), ylabel="success rate")
        _spare(axes, len(ops))
        axes[0][0].legend(title="framework", fontsize="small")
        return _png(fig)


def learning_curves(curves: pd.DataFrame) -> bytes | None:
    """Median MSE over seeds with its inter-quartile band, per model and framework (log y)."""
    if curves.empty:
        return None
    keys = ["param_op", "set", "unit", "framework", "step"]
    data = curves.assign(mse=_positive(curves["mse"]), param_op=curves["param_op"].fillna(""))
    q = data.groupby(keys, sort=True)["mse"].quantile([0.25, 0.5, 0.75]).unstack()
    q = q.reset_index()
    ops, sets = sorted(q["param_op"].unique()), sorted(q["set"].unique(), reverse=True)
    colours = _palette(q["unit"])
    with _figure(len(ops), len(sets), sharex=True) as (fig, axes):
        for (i, op), (j, name) in ((a, b) for a in enumerate(ops) for b in enumerate(sets)):
            ax, rows = axes[i][j], q[(q["param_op"] == op) & (q["set"] == name)]
            for (unit, fw), line in rows.groupby(["unit", "framework"], sort=True):
                line = line.set_index("step").loc[_thin(line["step"].to_numpy())]
                ax.plot(line.index, line[0.5], _STYLES.get(fw, ":"), color=colours[unit],
                        label=f"{unit} {fw}")
                ax.fill_between(line.index, line[0.25], line[0.75], color=colours[unit],
                                alpha=0.15, linewidth=0)
            _log_or_empty(ax, rows[[0.25, 0.5, 0.75]].to_numpy())
            ax.set(title=f"{op} {name}".strip(), ylabel="MSE",
                   xlabel="step" if i == len(ops) - 1 else "")
        _legend(fig, axes)
        return _png(fig)


def _log_or_empty(ax, values) -> None:
    """Log scale when there is something positive to show, else the empty-panel note."""
    if np.isfinite(values).any():
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())  # a third of the time
    else:
        _no_data(ax)


def _legend(fig, axes) -> None:
    """One legend for the figure, from the panel with the most lines."""
    ax = max(axes.flat, key=lambda a: len(a.get_lines()))
    if ax.get_lines():
        ax.legend(fontsize="x-small", ncol=2)


def _magnitude_long(df: pd.DataFrame) -> pd.DataFrame:
    """magnitude_curve dicts flattened into (op, unit, framework, start, mse) rows at once."""
    rows = df[df["magnitude_curve"].map(lambda m: isinstance(m, dict) and bool(m.get("start")))]
    if rows.empty:
        return pd.DataFrame(columns=["param_op", "unit", "framework", "start", "mse", "width"])
    curves = rows["magnitude_curve"].tolist()
    lengths = [len(m["start"]) for m in curves]
    keys = rows.reindex(columns=["param_op", "unit", "framework", "param_interpolation_range"])
    long = keys.loc[keys.index.repeat(lengths)].reset_index(drop=True)
    long["start"] = np.fromiter(chain.from_iterable(m["start"] for m in curves), float)
    long["mse"] = _positive(list(chain.from_iterable(m["mse"] for m in curves)))
    long["width"] = np.repeat([float(m.get("width") or 0) for m in curves], lengths)
    return long.assign(param_op=long["param_op"].fillna(""))


def magnitude(df: pd.DataFrame) -> bytes | None:
    """Extrapolation error against input magnitude (median over seeds, log y), training
    range shaded: where outside the training range each model stops working."""
    if "magnitude_curve" not in df:
        return None
    long = _magnitude_long(df)
    if long.empty:
        return None
    med = long.groupby(["param_op", "unit", "framework", "start"], sort=True).agg(
        mse=("mse", "median"), width=("width", "first")).reset_index()
    ops, colours = sorted(med["param_op"].unique()), _palette(med["unit"])
    with _figure(*_wrap(len(ops), 4.5), width=4.5) as (fig, axes):
        _spare(axes, len(ops))
        for ax, op in zip(axes.flat, ops):
            rows = med[med["param_op"] == op]
            for (unit, fw), line in rows.groupby(["unit", "framework"], sort=True):
                ax.plot(line["start"] + line["width"] / 2, line["mse"], _STYLES.get(fw, ":"),
                        marker=".", color=colours[unit], label=f"{unit} {fw}")
            ranges = long.loc[long["param_op"] == op, "param_interpolation_range"].dropna()
            spans = sorted({s for r in ranges.unique() for s in frame.spans(r)})
            for k, (lo, hi) in enumerate(spans):
                ax.axvspan(lo, hi, color="0.85", zorder=0, label="" if k else "training range")
            _log_or_empty(ax, rows["mse"].to_numpy())
            ax.set(title=f"op: {op}" if op else "", xlabel="input magnitude (interval centre)",
                   ylabel="MSE")
        _legend(fig, axes)
        return _png(fig)


def frameworks(summary: pd.DataFrame) -> bytes | None:
    """torch vs tf per configuration: success rate (with interval) and seed-steps per second."""
    if summary.empty:
        return None
    n = summary["config"].nunique()
    # configurations down the page, so that any number of them keeps its labels readable
    left = min(4.0, 0.4 + 0.075 * summary["config"].str.len().max())
    with _figure(1, 2, width=PAGE_INCHES / 2, height=0.3 * n + 1.1, bottom=0.6, left=left,
                 sharey=True) as (fig, axes):
        _bars(axes[0][0], summary, "success", "success_low", "success_high", label="config",
              horizontal=True)
        axes[0][0].set(xlim=(0, 1.05), xlabel="success rate", title="success rate")
        _bars(axes[0][1], summary, "seed_steps_per_s", label="config", horizontal=True)
        axes[0][1].set(xlabel="seed-steps / s (median)", title="training throughput")
        if (summary["seed_steps_per_s"] > 0).any():
            axes[0][1].set_xscale("log")
        axes[0][0].legend(title="framework", fontsize="small")
        return _png(fig)


LABEL_CHARS = 20  # a scoreboard column label's line, wrapped at spaces


def scoreboard(cells: pd.DataFrame, value: str = "success") -> bytes | None:
    """Success rate (or ``value="extrapolation_normalised"``: the median normalised
    extrapolation error, coloured from 0 to 100 and beyond, lower better) as a heatmap,
    models down, (task, op) across, one panel per framework; a cell whose budget is
    shorter than the published median solved-at step is hatched and its value marked with
    a dagger. cells: column, unit, framework, the value, limited."""
    if cells.empty or cells[value].isna().all():
        return None
    rate = value == "success"
    columns = list(dict.fromkeys(cells["column"]))  # the caller's order: task by task
    labels = [textwrap.fill(c, LABEL_CHARS, break_long_words=False, break_on_hyphens=False)
              for c in columns]  # the task above its op and parameters
    units, fws = sorted(cells["unit"].unique()), sorted(cells["framework"].unique())
    chars = max(len(line) for label in labels for line in label.split("\n"))
    lines = max(label.count("\n") + 1 for label in labels)
    left = 0.3 + 0.09 * max(map(len, units))
    upright = chars <= LABEL_CHARS and \
        left + 0.2 + max(0.8, 0.085 * chars) * len(columns) <= PAGE_INCHES  # else on end
    col = max(0.8, 0.085 * chars) if upright else max(0.8, 0.17 * lines + 0.1)
    below = 0.2 * lines if upright else 0.075 * chars
    width, height = left + 0.2 + col * len(columns), 0.4 * len(units) + 0.55 + below
    cmap = sns.color_palette("viridis" if rate else "viridis_r", as_cmap=True)
    text = (lambda v: f"{v:.0%}") if rate else (lambda v: f"{v:.3g}")  # noqa: E731
    with _figure(*_wrap(len(fws), width), width=width, height=height, left=left,
                 bottom=below + 0.2, row_gap=below + 0.55) as (fig, axes):
        _spare(axes, len(fws))
        for ax, fw in zip(axes.flat, fws):
            rows = cells[cells["framework"] == fw]
            grid = rows.pivot_table(index="unit", columns="column", values=value,
                                    aggfunc="first").reindex(index=units, columns=columns)
            limited = rows.pivot_table(index="unit", columns="column", values="limited",
                                       aggfunc="any").reindex(index=units, columns=columns)
            limited = limited.astype("boolean").fillna(False).to_numpy(bool)
            notes = np.where(grid.isna(), "", grid.map(text).astype(str)
                             + np.where(limited, " †", ""))
            sns.heatmap(grid, ax=ax, vmin=0, vmax=1 if rate else 100, cmap=cmap, annot=notes,
                        fmt="", annot_kws={"fontsize": 10}, cbar=False, linewidths=1,
                        linecolor="white", xticklabels=labels)
            for i, j in zip(*np.nonzero(limited)):
                ax.add_patch(matplotlib.patches.Rectangle((j, i), 1, 1, fill=False, hatch="//",
                                                          edgecolor="0.6", linewidth=0))
            ax.set(title=fw, xlabel="", ylabel="", facecolor="0.93")
            ax.tick_params(axis="x", labelrotation=0 if upright else 90, labelsize=9)
            ax.tick_params(axis="y", labelrotation=0)
            ax.grid(False)
        return _png(fig)


def range_pairs(df: pd.DataFrame) -> bytes | None:
    """[Primer]'s figure: success rate as a heatmap, units down, interpolation ranges
    across (in increasing order), one panel per op and framework. df: the static task's
    records with more than one interpolation range."""
    col = "param_interpolation_range"
    if df.empty or col not in df or df[col].nunique() < 2:
        return None
    runs = df[df["status"].isin(("ok", "diverged"))].assign(
        won=lambda d: d["success"].astype("boolean").fillna(False).astype(float))
    if runs.empty:
        return None
    ranges = sorted(runs[col].unique(), key=lambda r: frame.spans(r)[0] if frame.spans(r)
                    else (0.0, 0.0))
    panels = [(op, fw) for op in _ops(runs) for fw in sorted(runs["framework"].unique())]
    units = sorted(runs["unit"].unique())
    left = 0.3 + 0.09 * max(map(len, units))
    width = left + 0.3 + 0.62 * len(ranges)
    height = 0.32 * len(units) + 1.0
    cmap = sns.color_palette("viridis", as_cmap=True)
    with _figure(*_wrap(len(panels), width), width=width, height=height, left=left,
                 bottom=0.6) as (fig, axes):
        _spare(axes, len(panels))
        for ax, (op, fw) in zip(axes.flat, panels):
            rows = _rows_of(runs, op)
            rows = rows[rows["framework"] == fw]
            grid = rows.pivot_table(index="unit", columns=col, values="won",
                                    aggfunc="mean").reindex(index=units, columns=ranges)
            notes = grid.map(lambda v: "" if pd.isna(v) else f"{100 * v:.0f}")
            sns.heatmap(grid, ax=ax, vmin=0, vmax=1, cmap=cmap, annot=notes, fmt="",
                        annot_kws={"fontsize": 8}, cbar=False, linewidths=1,
                        linecolor="white")
            ax.set(title=f"{op}, {fw}", xlabel="interpolation range", ylabel="",
                   facecolor="0.93")
            ax.tick_params(axis="x", labelrotation=0, labelsize=6.5)
            ax.tick_params(axis="y", labelrotation=0, labelsize=9)
            ax.grid(False)
        return _png(fig)
