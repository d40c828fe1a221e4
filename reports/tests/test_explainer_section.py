"""The explainer's claim beside its runs: per function, unit and framework the test l2
loss over seeds and how many seeds reach the explainer's figure, in the rendered page."""
import math

from reports import frame, html, stats
from reports.sections import explainer
from reports.tests.conftest import record
from tasks.static_arithmetic import EXPLAINER_L2

ADD = [1e-6, 5e-5, EXPLAINER_L2, 2e-4, 3.0, math.inf, math.nan, 1e9]  # 3 of 8 reach it


def _records():
    out = [record(seed=s, unit="nalu", op="add", params={"protocol": "explainer"},
                  test_l2_loss=v, success=v <= EXPLAINER_L2) for s, v in enumerate(ADD)]
    out += [record(seed=s, unit="nau", op="mul", framework="tf",
                   params={"protocol": "explainer"}, test_l2_loss=10.0 ** s, success=False)
            for s in range(3)]
    out += [record(seed=0, unit="nalu", op="add", test_l2_loss=1e-9)]  # not the protocol
    return out


def test_claim_table_counts_the_seeds_that_reach_the_figure():
    table = explainer.claim_table(frame.frame(_records()))
    rows = {(r[0], r[1], r[2]): r for r in table["rows"]}
    assert set(rows) == {("add", "nalu", "torch"), ("mul", "nau", "tf")}
    add = rows[("add", "nalu", "torch")]
    assert add[3] == 8  # the run of the other protocol is not counted
    assert add[4] == "1.5"  # median of the 8, NaN as +inf: the mean of 2e-4 and 3
    assert add[6] == "1e-06" and add[7] == 2  # min; inf and NaN are not finite
    low, high = stats.wilson(3, 8)
    assert add[8] == f"3 of 8: 38% [{low:.0%}, {high:.0%}]"
    assert add[9] == "8.575e-05 (one run)" and rows[("mul", "nau", "tf")][9] == \
        '"similarly" well'
    assert rows[("mul", "nau", "tf")][8].startswith("0 of 3")


def test_section_shows_claim_table_and_distribution(tmp_path):
    text = html.render(frame.frame(_records()), tmp_path / "r.html").read_text()
    section = text[text.index('id="task-static_arithmetic"'):]
    assert "Published results beside this run" in section
    assert "grananqvist/NALU-tf" in section and "3 of 8: 38%" in section
    assert "The explainer&#39;s experiment: test l2 loss of every seed" in section
    assert explainer.distribution(frame.frame(_records())).startswith(b"\x89PNG")
    assert explainer.claim_table(frame.frame(_records()[-1:])) is None  # no such runs
