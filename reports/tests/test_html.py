"""The HTML report: its numbers, its escaping, and that it stands alone."""
from __future__ import annotations

import base64
import re
import struct

from benchmarks import schema
from reports import figures, frame, html, stats
from reports.tests.conftest import published_records, record, report_records, write


def test_render(results_dir, tmp_path):
    df = frame.load(results_dir)
    out = html.render(df, tmp_path / "report" / "report.html", title="Test <report>")
    text = out.read_text()
    assert out.name == "report.html"
    assert (out.parent / "results.csv").exists() and (out.parent / "results.parquet").exists()
    assert "<title>Test &lt;report&gt;</title>" in text
    # the add op: one ok success and one diverged run of nau-nmu/torch
    low, high = stats.wilson(1, 2)
    assert "<h4>op: add</h4>" in text and "<h4>op: sub</h4>" in text
    assert f"50% [{low:.0%}, {high:.0%}]" in text and "0% [0%, 79%]" in text
    assert "1e-06" in text and ">1000<" in text and "0.01" in text  # medians as %.3g, steps whole
    assert "quick" in text and "2.13.0" in text and "testhost" in text
    assert "RuntimeError: boom" in text and "unreadable record file" in text
    assert "input_size = 100" in text and "[-6,-2]U[2,6]" in text


def test_render_escapes_and_is_self_contained(results_dir, tmp_path):
    text = html.render(frame.load(results_dir), tmp_path / "r.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script>alert(1)</script>" not in text and "<script" not in text
    assert "://" not in text and "<link" not in text and "@import" not in text


def test_render_empty(tmp_path):
    empty = frame.frame([])
    text = html.render(empty, tmp_path / "r.html").read_text()
    assert "<h2>Overview</h2>" in text


def test_render_embeds_figures_and_frameworks(tmp_path):
    df, curves = frame.read(write(report_records(), tmp_path / "results"))
    text = html.render(df, tmp_path / "r.html", curves=curves).read_text()
    imgs = re.findall(r'<img src="([^"]+)"', text)
    assert len(imgs) == 6 and all(src.startswith("data:image/png;base64,") for src in imgs)
    assert "Median normalised extrapolation error per model and task" in text
    assert "Learning curves" in text and "input magnitude" in text
    assert '<section id="frameworks">' in text and "torch seed-steps/s" in text
    assert "total wall time</dt><dd>38.0 s" in text  # 19 finished one-seed groups of 2 s
    assert "quick (3,000 steps, lr 0.001, batch 128)" in text
    board = text[text.index("<h4>op: add</h4>"):text.index("<h4>op: mul</h4>")]
    assert board.index("<td>nau</td>") < board.index("<td>nalu</td>")  # 67% before 33%
    no_curves = html.render(df, tmp_path / "s.html").read_text()
    assert no_curves.count("<img ") == 5 and "Learning curves" not in no_curves


def png_width(uri: str) -> int:
    """The pixel width in a PNG's IHDR chunk."""
    png = base64.b64decode(uri.removeprefix("data:image/png;base64,"))
    return struct.unpack(">I", png[16:20])[0]


def board_records() -> list[dict]:
    """The report's records plus runs at the published configuration, one budget-limited."""
    return [*report_records(), *published_records({("add", "nac"): [False] * 4,
                                                   ("sub", "nau"): [True] * 4})]


def test_scoreboard_cells_links_and_marks(tmp_path):
    df = frame.load(write(board_records(), tmp_path / "results"))
    text = html.render(df, tmp_path / "r.html").read_text()
    board = text[text.index('<section id="scoreboard">'):text.index('<section id="overview">')]
    board = board.replace("_<wbr>", "_")  # headings may break after an underscore
    assert text.index('<section id="scoreboard">') < text.index('<section id="overview">')
    # the test range varies, so it names the columns: add twice, mul and sub once
    columns = re.findall(r'<th><a href="#task-static_arithmetic">([^<]+)</a></th>', board)
    assert columns == [f"static_arithmetic {op} extrapolation_range={r}" for op, r in (
        ("add", "[-6,-2]U[2,6]"), ("add", "[2,6]"), ("mul", "[-6,-2]U[2,6]"), ("sub", "[2,6]"))]
    assert '<section class="task" id="task-static_arithmetic">' in text
    low, high = stats.wilson(2, 3)
    assert f'>67%<br><span class="ci">[{low:.0%}, {high:.0%}]</span><br><span class="norm' in board
    # at 3,000 steps, below [NAU]'s median solved-at steps (nac add 2.5e5, nau sub 5e3):
    # marked; the runs at the other test range are not at the published configuration
    assert '<td class="num limited" title="nac torch on static_arithmetic add ' in board
    assert '>0% †<br><span class="ci">[0%, 49%]</span><br><span class="norm' in board
    assert '>100% †<br><span class="ci">[51%, 100%]</span><br><span class="norm' in board
    assert board.count(" †<br>") == 2 and board.count('class="num limited"') == 2
    assert "of 4 runs (budget shorter than the published median solved-at step)" in board


def test_scoreboard_leaves_out_runs_with_no_bar_to_pass(tmp_path):
    """A reference run (sequential_mnist's solved accumulators: `scored` false) makes the
    bar and is not scored against one; its 'success' false is no 0% on the scoreboard."""
    runs = [record(seed=s, unit=u, op="add", scored=u == "nau", success=u == "nau")
            for s in range(2) for u in ("nau", "nac")]
    text = html.render(frame.frame(runs), tmp_path / "r.html").read_text()
    board = text[text.index('<section id="scoreboard">'):text.index('<section id="overview">')]
    assert 'title="nau torch on static_arithmetic add: 100%' in board
    assert "nac torch on" not in board


def test_scoreboard_columns_name_what_varies(tmp_path):
    runs = [record(seed=s, unit=u, op="add", params={"input_size": size})
            for s in range(2) for u in ("nau", "nac") for size in (2, 100)]
    text = html.render(frame.frame(runs), tmp_path / "r.html").read_text()
    board = text[text.index('<section id="scoreboard">'):text.index('<section id="overview">')]
    board = board.replace("_<wbr>", "_")  # headings may break after an underscore
    assert ">static_arithmetic add input_size=2<" in board
    assert ">static_arithmetic add input_size=100<" in board


def test_scoreboard_columns_name_only_parameters_that_tell_them_apart(tmp_path):
    """hidden_size follows input_size here, as sequential_mnist's test lengths follow its
    operation: the labels name input_size (declared first) and eps, not hidden_size."""
    runs = [record(seed=s, unit="nau", op="add",
                   params={"input_size": size, "hidden_size": hidden, "eps": eps})
            for s in range(2) for size, hidden in ((2, 2), (100, 8)) for eps in (1e-7, 1e-4)]
    text = html.render(frame.frame(runs), tmp_path / "r.html").read_text()
    board = text[text.index('<section id="scoreboard">'):text.index('<section id="overview">')]
    heads = re.findall(r"<th[^>]*><a[^>]*>([^<]+)</a>", board.replace("_<wbr>", "_"))
    assert sorted(heads) == sorted(f"static_arithmetic add input_size={n} eps={e}"
                                   for n in (2, 100) for e in (1e-7, 1e-4)), heads


def test_many_range_pairs_share_one_column_per_op(tmp_path):
    """[Primer]'s 9 range pairs per op: one pooled column per op, leading to the heatmap;
    3 range pairs keep a column each."""
    pairs = [((lo, lo + 1), (lo + 1, lo + 3)) for lo in range(1, 10)]
    runs = [record(seed=s, unit="nau", op=op, params={"input_size": 2,
                   "interpolation_range": i, "extrapolation_range": e},
                   success=(op == "add" and s == 0))
            for s in range(2) for op in ("add", "sub") for i, e in pairs]
    runs += [record(seed=s, unit="nau", op="mul", params={"input_size": 2,
                    "interpolation_range": i, "extrapolation_range": e})
             for s in range(2) for i, e in pairs[:3]]
    text = html.render(frame.frame(runs), tmp_path / "r.html").read_text()
    board = text[text.index('<section id="scoreboard">'):text.index('<section id="overview">')]
    board = board.replace("_<wbr>", "_")
    heads = re.findall(r'<th><a href="([^"]+)">([^<]+)</a></th>', board)
    pooled = [(href, h) for href, h in heads if "range pairs" in h]
    assert pooled == [("#range-pairs", "static_arithmetic add, 9 range pairs"),
                      ("#range-pairs", "static_arithmetic sub, 9 range pairs")]
    single = [(href, h) for href, h in heads if "range pairs" not in h]
    assert len(single) == 3 and all(href == "#task-static_arithmetic" and " mul " in h
                                    and "interpolation_range=" in h for href, h in single)
    assert 'title="nau torch on static_arithmetic add, 9 range pairs: 50%' in board  # pooled
    assert 'id="range-pairs"' in text


def test_contents_link_to_every_section(tmp_path):
    df, curves = frame.read(write(board_records(), tmp_path / "results"))
    text = html.render(df, tmp_path / "r.html", curves=curves).read_text()
    nav = text[text.index('<nav class="contents"'):text.index("</nav>")]
    anchors = re.findall(r'href="#([^"]+)"', nav)
    assert anchors == ["scoreboard", "overview", "task-static_arithmetic", "fidelity",
                       "frameworks"]
    assert all(f'id="{a}"' in text for a in anchors)


def test_no_figure_is_wider_than_the_page(tmp_path):
    runs = [record(seed=s, unit=u, op=op, framework=fw, magnitude_curve=None)
            for s in range(2) for u in ("nau", "nac", "nalu", "linear", "relu6", "nau-nmu")
            for op in ("add", "sub", "mul", "div", "squared", "root") for fw in ("torch", "tf")]
    df, curves = frame.read(write(runs, tmp_path / "results"))
    text = html.render(df, tmp_path / "r.html", curves=curves).read_text()
    widths = [png_width(uri) for uri in re.findall(r'<img src="([^"]+)"', text)]
    assert len(widths) == 5 and max(widths) <= figures.PAGE_INCHES * figures.DPI
    assert min(widths) > 300


def all_fail(tmp_path):
    """Three models that all fail (0%) on two tasks; their normalised extrapolation errors
    rank them nau (5) < nac (40) < nalu (90) on the static task and on text to number."""
    errors = {"nalu": 90.0, "nac": 40.0, "nau": 5.0}
    runs = [record(seed=s, unit=u, success=False, extrapolation_mse=1.0,
                   extrapolation_normalised=e + s) for s in range(3) for u, e in errors.items()]
    text = [record(seed=s, unit=u, success=False, extrapolation_mse=1.0,
                   extrapolation_normalised=e + s, params={"language": "en"},
                   spec={"task": "text_to_number"})
            for s in range(2) for u, e in errors.items()]
    for r in text:  # a text-to-number record's parameters, not the static task's
        r["task_params"] = {"language": "en"}
        r["id"] = schema.spec_id_of(r)
    df = frame.load(write([*runs, *text], tmp_path / "results"))
    return html.render(df, tmp_path / "r.html").read_text()


def test_leaderboard_ranks_by_normalised_error_when_success_ties(tmp_path):
    text = all_fail(tmp_path)
    section = text[text.index('id="task-static_arithmetic"'):]
    section = section[:section.index("</table>")]
    order = [section.index(f"<td>{u}</td>") for u in ("nau", "nac", "nalu")]
    assert order == sorted(order), "all at 0%: lowest normalised extrapolation error first"
    assert "<th>extrapolation normalised</th>" in section
    assert '<td class="num">6</td>' in section  # nau's median over seeds 5, 6, 7


def test_scoreboard_shows_and_ranks_by_normalised_error(tmp_path):
    text = all_fail(tmp_path)
    board = text[text.index('<section id="scoreboard">'):text.index('<section id="overview">')]
    rows = re.findall(r"<tr><td>(\w+)</td><td>torch</td>", board)
    assert rows == ["nau", "nac", "nalu"]  # every cell 0%: ranked by the normalised error
    assert board.count('<span class="norm lead">') == 2  # one best cell per column
    assert '<span class="norm lead">6</span>' in board  # static: median of 5, 6, 7
    assert '<span class="norm lead">5.5</span>' in board  # text: median of 5, 6
    assert '<span class="norm">91</span>' in board
    assert "median normalised extrapolation error 41" in board  # nac's static cell, its title
    assert "0%<br><span class=\"ci\">[0%, 56%]</span>" in board  # success keeps its interval


def test_scoreboard_success_still_ranks_first(tmp_path):
    """A model that succeeds ranks above one with a lower normalised error that does not."""
    runs = [record(seed=s, unit="nau", success=False, extrapolation_normalised=1.0)
            for s in range(2)]
    runs += [record(seed=s, unit="nac", success=True, extrapolation_normalised=50.0)
             for s in range(2)]
    text = html.render(frame.frame(runs), tmp_path / "r.html").read_text()
    board = text[text.index('<section id="scoreboard">'):text.index('<section id="overview">')]
    assert re.findall(r"<tr><td>(\w+)</td><td>torch</td>", board) == ["nac", "nau"]
