"""The HTML report: its numbers, its escaping, and that it stands alone."""
from __future__ import annotations

import re

from reports import frame, html, stats
from reports.tests.conftest import report_records, write


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
    assert len(imgs) == 4 and all(src.startswith("data:image/png;base64,") for src in imgs)
    assert "Learning curves" in text and "input magnitude" in text
    assert '<section id="frameworks">' in text and "torch seed-steps/s" in text
    assert "total wall time</dt><dd>38.0 s" in text  # 19 finished one-seed groups of 2 s
    assert "quick (3,000 steps, lr 0.001, batch 128)" in text
    board = text[text.index("<h4>op: add</h4>"):text.index("<h4>op: mul</h4>")]
    assert board.index("<td>nau</td>") < board.index("<td>nalu</td>")  # 67% before 33%
    no_curves = html.render(df, tmp_path / "s.html").read_text()
    assert no_curves.count("<img ") == 3 and "Learning curves" not in no_curves
