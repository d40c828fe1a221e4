"""Every figure draws a PNG from a small frame and never raises on empty or non-finite data."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from reports import figures, frame, stats
from reports.tests.conftest import MAGNITUDE, record, report_records

PNG = b"\x89PNG\r\n\x1a\n"
NONE = {**MAGNITUDE, "mse": [None] * len(MAGNITUDE["start"])}


def speeds(df: pd.DataFrame) -> pd.DataFrame:
    """The frameworks figure's input: a summary with a configuration label and throughput."""
    table = stats.summary(df, by=("param_op", "unit", "framework"))
    if table.empty:
        return table.assign(config=[], seed_steps_per_s=[])
    return table.assign(config=table["param_op"] + " " + table["unit"],
                        seed_steps_per_s=[2000.0 * (i + 1) for i in range(len(table))])


def draw_all(records: list[dict]) -> list:
    """Each figure of a report for these records."""
    df = frame.frame(records)
    finished = df[df["status"].isin(("ok", "diverged"))]
    return [figures.success_rates(stats.summary(finished, by=("param_op", "unit", "framework"))),
            figures.learning_curves(frame.curves(records)), figures.magnitude(finished),
            figures.frameworks(speeds(finished))]


@pytest.fixture(autouse=True)
def no_open_figures():
    """A report draws many figures in one process: none may stay open."""
    yield
    assert plt.get_fignums() == []


def test_every_figure_is_a_png():
    pngs = draw_all(report_records())
    assert all(p is not None and p.startswith(PNG) and len(p) > 2000 for p in pngs)
    assert figures.data_uri(pngs[0]).startswith("data:image/png;base64,iVBOR")


def test_all_diverged_draws_without_raising():
    nan = {"step": [0, 1000, 2000], "interpolation": [math.nan] * 3,
           "extrapolation": [None, math.inf, -1.0]}
    records = [record("diverged", seed=s, unit=u, magnitude_curve=NONE) | {"curve": nan}
               for s in range(3) for u in ("nau", "nalu")]
    assert all(p.startswith(PNG) for p in draw_all(records))


def test_missing_values_draw_without_raising():
    records = [record(seed=0, success=None, solved_at=None, magnitude_curve=None),
               record(seed=1, op="mul", magnitude_curve={"start": [], "width": 1, "mse": []}),
               record(seed=2, op="sub", magnitude_curve=MAGNITUDE) | {"seed_steps_per_s": None}]
    pngs = draw_all(records)
    assert pngs[0].startswith(PNG) and pngs[1].startswith(PNG) and pngs[3].startswith(PNG)
    assert pngs[2].startswith(PNG)  # only the sub run has a magnitude curve


def test_empty_inputs_give_none():
    empty = frame.frame([])
    assert figures.success_rates(stats.summary(empty)) is None
    assert figures.learning_curves(frame.curves([])) is None
    assert figures.magnitude(empty) is None
    assert figures.magnitude(frame.frame([record(seed=0)])) is None  # no magnitude_curve column
    assert figures.frameworks(speeds(empty)) is None


def test_long_curves_are_thinned():
    steps = list(range(0, 1000 * 1000, 1000))
    long = record(seed=0) | {"curve": {"step": steps, "interpolation": [1.0] * len(steps),
                                       "extrapolation": [2.0] * len(steps)}}
    assert len(figures._thin(pd.Series(steps).to_numpy())) == figures.MAX_POINTS
    assert figures.learning_curves(frame.curves([long])).startswith(PNG)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk."""
    import struct

    return struct.unpack(">II", png[16:24])


def board(columns: int, units: int = 6, frameworks=("tf", "torch")) -> pd.DataFrame:
    """Scoreboard cells, every third one missing (a model not run on that task)."""
    return pd.DataFrame([{"column": f"task_{c} op", "unit": f"unit{u}", "framework": fw,
                          "success": (u + c) % 5 / 4, "limited": c == 0}
                         for c in range(columns) for u in range(units) for fw in frameworks
                         if (u + c) % 3])


def test_scoreboard_fits_the_page_and_stacks_panels():
    narrow, wide = figures.scoreboard(board(3)), figures.scoreboard(board(12))
    page = figures.PAGE_INCHES * figures.DPI
    (w1, h1), (w2, h2) = png_size(narrow), png_size(wide)
    assert narrow.startswith(PNG) and wide.startswith(PNG)
    assert w1 <= page and w2 <= page
    assert h2 > 1.8 * h1  # twelve columns do not fit twice across: the panels stack
    assert figures.scoreboard(board(3).iloc[0:0]) is None
    one = figures.scoreboard(board(2, frameworks=("torch",)))
    assert png_size(one)[0] < w1  # one panel, not two


@pytest.mark.parametrize("labels", [
    ["static_arithmetic add", "static_arithmetic sub", "grid_world"],
    [f"static_arithmetic op{i}" for i in range(14)],  # upright, they would not fit across
    ["static_arithmetic add", "grid_world", "text_to_number language=de",
     *(f"sequential_mnist operation={op} simplification={s} regulariser_z={z}"
       for op in ("sum", "prod") for s in ("none", "solved-accumulator") for z in (0, 1))],
])
def test_scoreboard_labels_can_all_be_read(monkeypatch, labels):
    """No column label overlaps another, a cell or the panel below (the quick suite's long
    sequential_mnist labels ran into each other in one band)."""
    cells = board(len(labels)).assign(
        column=lambda d: d["column"].map(dict(zip(dict.fromkeys(board(len(labels))["column"]),
                                                  labels))))
    boxes = {}

    def measure(fig):
        renderer = fig.canvas.get_renderer()
        axes = [ax for ax in fig.axes if ax.get_visible()]
        boxes["labels"] = [t.get_window_extent(renderer) for ax in axes
                           for t in ax.get_xticklabels() if t.get_text()]
        boxes["panels"] = [ax.get_window_extent(renderer) for ax in axes]
        boxes["titles"] = [ax.title.get_window_extent(renderer) for ax in axes]
        boxes["figure"] = fig.bbox
        return b""

    monkeypatch.setattr(figures, "_png", measure)
    figures.scoreboard(cells)
    labels_, others = boxes["labels"], boxes["panels"] + boxes["titles"]
    assert len(labels_) == 2 * len(labels)  # every column labelled in both panels
    for i, a in enumerate(labels_):
        assert a.x0 >= 0 and a.y0 >= 0 and a.x1 <= boxes["figure"].x1  # on the figure
        assert not [b for b in labels_[i + 1:] if a.overlaps(b)], "labels overlap"
        assert not [b for b in others if a.overlaps(b)], "a label overlaps a panel or title"


def test_range_pairs_heatmap_one_panel_per_op_and_framework():
    rows = [{"unit": unit, "framework": fw, "param_op": op, "status": status,
             "param_interpolation_range": rng, "success": success}
            for unit in ("nau", "nalu") for fw in ("torch", "tf") for op in ("add", "mul")
            for rng in ("[1,2]", "[-2,-1]", "[-2,2]")
            for status, success in (("ok", True), ("ok", False), ("diverged", None))]
    png = figures.range_pairs(pd.DataFrame(rows))
    assert png.startswith(PNG)
    one_range = pd.DataFrame([r for r in rows if r["param_interpolation_range"] == "[1,2]"])
    assert figures.range_pairs(one_range) is None  # nothing to compare across ranges
    errors_only = pd.DataFrame([{**r, "status": "error"} for r in rows])
    assert figures.range_pairs(errors_only) is None
