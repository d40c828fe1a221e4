"""published.csv as PROTOCOLS.md states it, joined with this run, with the protocol said."""
from __future__ import annotations

import pytest

from reports import frame, html, published
from reports.tests.conftest import record, report_records, write

PAPER = dict(budget="paper", steps=5_000_000, lr=1e-3, batch_size=128,
             param_interpolation_range="[1,2]", param_extrapolation_range="[2,6]")


def test_table_matches_protocols():
    pub = published.table().set_index(["op", "unit"])
    assert len(pub) == len(pub.index.unique())
    add_nau = pub.loc[("add", "nau")]
    assert (add_nau["success"], add_nau["success_low"], add_nau["success_high"]) == (1, 0.96, 1)
    assert add_nau["solved_at"] == 1.8e4 and add_nau["sparsity_error"] == pytest.approx(3.2e-5)
    assert pub.loc[("mul", "nau-nmu"), "success_low"] == pytest.approx(0.93)
    assert pub["verified"].all() and (pub["steps"] == 5_000_000).all()
    assert (pub["seeds"] == 100).all() and pub["source"].str.startswith("[NAU]").all()


def test_compare_finds_add_nau():
    df = frame.frame([record(seed=s, op="add", unit="nau") for s in range(4)])
    both = published.compare(df)
    row = both.set_index(["param_op", "unit", "framework"]).loc[("add", "nau", "torch")]
    assert row["runs"] == 4 and row["success"] == 1 and row["success_published"] == 1
    assert row["solved_at"] == 1000 and row["solved_at_published"] == 1.8e4
    assert published.compare(frame.frame([record(op="add", unit="relu")])).shape[0] == 1
    assert published.compare(frame.frame([record(op="root", unit="nau")])).empty


def test_protocol_note_for_a_quick_budget():
    df = frame.frame([record(seed=s, op="add", unit="nau") for s in range(3)])
    note = published.protocol_note(df)
    assert note.startswith("Protocol differs: this run: quick budget, 3,000 steps, lr 0.001")
    assert "published: 5,000,000 steps, lr 0.001" in note and "3 seeds" in note
    assert "test [-6,-2]U[2,6]" in note and "test [2,6]" in note  # ranges differ too


def test_no_note_for_the_paper_protocol():
    df = frame.frame([record(seed=s, op="add", unit="nau") for s in range(3)]).assign(**PAPER)
    assert published.protocol_note(df) is None
    assert "lr 0.005" in published.protocol_note(df.assign(lr=5e-3))
    assert "budget" in published.protocol_note(df.assign(budget="quick"))


def test_report_shows_the_comparison(tmp_path):
    df, curves = frame.read(write(report_records(), tmp_path / "results"))
    text = html.render(df, tmp_path / "r.html", curves=curves).read_text()
    assert "Published results beside this run" in text and "Protocol differs" in text
    assert "[NAU] Madsen &amp; Johansen" in text and "1.8e+04" in text
    assert "98% [93%, 99%]" in text  # mul / nau-nmu, the published interval
