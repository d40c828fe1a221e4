"""The HTML report: its numbers, its escaping, and that it stands alone."""
from __future__ import annotations

from reports import frame, html, stats


def test_render(results_dir, tmp_path):
    df = frame.load(results_dir)
    out = html.render(df, tmp_path / "report" / "report.html", title="Test <report>")
    text = out.read_text()
    assert out.name == "report.html"
    assert (out.parent / "results.csv").exists() and (out.parent / "results.parquet").exists()
    assert "<title>Test &lt;report&gt;</title>" in text
    # the add op: one ok success and one diverged run of nau-nmu/torch
    low, high = stats.wilson(1, 2)
    assert "<h3>op: add</h3>" in text and "<h3>op: sub</h3>" in text
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
