"""``compare BASELINE NEW --against-baseline``: a new unit against every unit of a published
baseline, cell by cell, on hand-made records and on the shipped primer.parquet."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks import cli, compare
from benchmarks.tests.test_compare import fisher_by_hand
from reports import frame, stats
from reports.tests.conftest import record, write

ROOT = Path(__file__).resolve().parents[2]
PRIMER = ROOT / "reports" / "baselines" / "primer.parquet"
# a cell of the primer budget: input size 2, one of its range pairs
CELL = {"input_size": 2, "interpolation_range": [[1.0, 2.0]],
        "extrapolation_range": [[2.0, 6.0]]}
BUDGET = {"budget": "primer", "steps": 50_000, "eval_interval": 1000}


def runs(unit, op, successes, n=20, framework="torch", params=None, spec=None):
    """n records of one cell, the first `successes` of them solved."""
    return [record(seed=s, unit=unit, op=op, framework=framework, success=s < successes,
                   extrapolation_mse=1e-4 if s < successes else 10.0,
                   params={**CELL, **(params or {})}, spec={**BUDGET, **(spec or {})})
            for s in range(n)]


def published(tmp_path, records) -> Path:
    """The records as a saved table, the shape of reports/baselines/primer.parquet."""
    return frame.save(frame.load(write(records, tmp_path / "base-records")),
                      tmp_path / "baseline")[1]


@pytest.fixture
def baseline(tmp_path):
    """nac: add 2/20, sub 20/20; nau: add 20/20, sub 20/20; and nau on add in tf 20/20."""
    return published(tmp_path, [*runs("nac", "add", 2), *runs("nac", "sub", 20),
                                *runs("nau", "add", 20), *runs("nau", "sub", 20),
                                *runs("nau", "add", 20, framework="tf")])


def test_a_clearly_better_unit_is_better_where_it_is_and_only_there(baseline, tmp_path):
    """mine solves add and sub in 20/20: better than nac on add (2/20), not distinguishable
    from nac on sub nor from nau anywhere; no tf runs, so the tf cell is not compared."""
    new = write([*runs("mine", "add", 20), *runs("mine", "sub", 20)], tmp_path / "new")
    cmp = compare.against_baseline(baseline, new)
    t = cmp.table.set_index(["configuration", "baseline_unit"])
    assert sorted(t.index) == [("static_arithmetic add torch", "nac"),
                               ("static_arithmetic add torch", "nau"),
                               ("static_arithmetic sub torch", "nac"),
                               ("static_arithmetic sub torch", "nau")]
    win = t.loc[("static_arithmetic add torch", "nac")]
    assert (win["successes_b"], win["runs_b"], win["successes_a"], win["runs_a"]) == (20, 20,
                                                                                      2, 20)
    assert win["p"] == pytest.approx(fisher_by_hand(2, 20, 20, 20), rel=1e-9)
    assert win["p_holm"] == pytest.approx(2 * win["p"], rel=1e-9)  # Holm over nac's 2 cells
    assert win["change"] == "better"
    assert win["wilson_b"] == pytest.approx(stats.wilson(20, 20))
    assert (t.drop(("static_arithmetic add torch", "nac"))["change"] == "").all()
    summary = cmp.summary().set_index("baseline_unit")
    assert summary.loc["nac", ["cells", "better", "worse", "same"]].tolist() == [2, 1, 0, 1]
    assert summary.loc["nau", ["cells", "better", "worse", "same"]].tolist() == [2, 0, 0, 2]
    assert cmp.only_new == [] and "param_op" in cmp.matched_on and "steps" in cmp.matched_on


def test_a_clearly_worse_unit_is_worse(baseline, tmp_path):
    new = write(runs("mine", "sub", 0), tmp_path / "new")
    cmp = compare.against_baseline(baseline, new)
    assert list(cmp.table["change"]) == ["worse", "worse"]
    assert list(cmp.table["baseline_unit"]) == ["nac", "nau"]


def test_each_pair_is_the_models_comparison_in_one_directory(baseline, tmp_path):
    """Against one baseline unit the rows are `compare DIR --models that,mine` on a
    directory holding both: the same counts, p-values and Holm correction."""
    mine = [*runs("mine", "add", 12), *runs("mine", "sub", 5)]
    cmp = compare.against_baseline(baseline, write(mine, tmp_path / "new"))
    together = write([*runs("nac", "add", 2), *runs("nac", "sub", 20), *mine],
                     tmp_path / "together")
    alone = compare.models(together, "nac", "mine").table.set_index("configuration")
    ours = cmp.table[cmp.table["baseline_unit"] == "nac"].set_index("configuration")
    columns = ["successes_a", "runs_a", "successes_b", "runs_b", "p", "p_holm", "change"]
    pd.testing.assert_frame_equal(ours.loc[alone.index, columns], alone[columns])


def test_cells_match_on_every_parameter_both_sides_have(baseline, tmp_path):
    """A parameter only NEW has (one the task gained after the baseline was written) is
    named, not matched on; one both have with other values (the range pair) keeps the
    cells apart."""
    records = write([*runs("mine", "add", 20),
                     *runs("mine", "add", 20, params={"interpolation_range": [[10.0, 20.0]],
                                                      "extrapolation_range": [[20.0, 40.0]]})],
                    tmp_path / "new-records")
    new = frame.save(frame.load(records).assign(param_gained=3), tmp_path / "new")[1]
    cmp = compare.against_baseline(baseline, new)
    assert "param_gained" not in cmp.matched_on
    assert cmp.unmatched == ["gained (only in NEW)"]
    assert set(cmp.table["configuration"]) == {
        "static_arithmetic add extrapolation_range=[2,6] interpolation_range=[1,2] torch"}
    assert cmp.only_new == ["mine: static_arithmetic add extrapolation_range=[20,40] "
                            "interpolation_range=[10,20] torch"]


def test_an_option_left_out_while_off_is_its_default_on_the_other_side(baseline, tmp_path,
                                                                        capsys):
    """`protocol` is left out of a spec at its default (suite), so the baseline's records
    hold no such column: they are protocol=suite, and a NEW run at protocol=primer shares
    no cell with them; at the default it matches, on protocol too."""
    primer = write(runs("mine", "add", 20, params={"protocol": "primer"}), tmp_path / "new")
    assert cli.main(["compare", str(baseline), str(primer), "--against-baseline"]) == 2
    assert "protocol: primer in NEW, suite in the baseline" in capsys.readouterr().err
    suite = write([*runs("mine", "add", 20, params={"protocol": "suite"}),
                   *runs("mine", "sub", 20, params={"protocol": "primer"})], tmp_path / "mixed")
    cmp = compare.against_baseline(baseline, suite)
    assert "param_protocol" in cmp.matched_on and cmp.unmatched == []
    assert set(cmp.table["configuration"]) == {"static_arithmetic add protocol=suite torch"}
    assert cmp.only_new == ["mine: static_arithmetic sub protocol=primer torch"]


def test_the_cli_prints_cells_with_wilson_intervals_and_a_verdict_per_unit(baseline, tmp_path,
                                                                            capsys):
    new = write([*runs("mine", "add", 20), *runs("mine", "sub", 0)], tmp_path / "new")
    page = tmp_path / "out" / "against.html"
    assert cli.main(["compare", str(baseline), str(new), "--against-baseline",
                     "-o", str(page)]) == 0  # worse than a published unit is not a failure
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [f"baseline = {baseline}", f"NEW = {new}"]
    row = next(r for r in out if r.startswith("static_arithmetic add torch") and " nac " in r)
    assert "20/20 100% [84%, 100%]" in row and "2/20 10% [3%, 30%]" in row
    assert row.rstrip().endswith("better")
    assert ("mine against nac: better in 1, worse in 1, not distinguishable in 0 of 2 cells "
            "(Fisher's exact test on success, Holm-corrected over the 2 cells, alpha 0.05)"
            ) in out
    assert any(r.startswith("mine against nau: better in 0, worse in 1,") for r in out)
    assert out[-1] == f"written to {page}"
    assert '<tr class="better"><td>static_arithmetic add torch</td>' in page.read_text()


def test_units_picks_the_new_runs_units(baseline, tmp_path, capsys):
    new = write([*runs("mine", "add", 20), *runs("other", "add", 0)], tmp_path / "new")
    assert set(compare.against_baseline(baseline, new).table["unit"]) == {"mine", "other"}
    assert cli.main(["compare", str(baseline), str(new), "--against-baseline",
                     "--units", "other"]) == 0
    out = capsys.readouterr().out
    assert "other against nac" in out and "mine against" not in out


@pytest.mark.parametrize("new_runs, message", [
    (lambda: runs("mine", "add", 20, params={"input_size": 100}),
     "shares no cell with the baseline {base}: input_size: 100 in NEW, 2 in the baseline"),
    (lambda: runs("mine", "add", 20, spec={"steps": 20_000}),
     "steps: 20000 in NEW, 50000 in the baseline"),
    (lambda: [*runs("mine", "mul", 20), *runs("mine", "add", 20, params={"input_size": 100})],
     "the baseline has no input_size 100, no op mul, and NEW's other values never meet"),
    (lambda: runs("mine", "sub", 20, framework="tf"),  # sub ran in torch only, tf on add only
     "each of NEW's values occurs in the baseline, never in the same combination"),
])
def test_no_cell_in_common_exits_2_naming_what_differs(baseline, tmp_path, capsys, new_runs,
                                                        message):
    new = write(new_runs(), tmp_path / "new")
    assert cli.main(["compare", str(baseline), str(new), "--against-baseline"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m benchmarks compare: error: ")
    assert message.format(base=baseline) in err


@pytest.mark.parametrize("args, message", [
    (["{base}", "{tmp}/nowhere", "--against-baseline"], "does not exist"),
    (["{tmp}/none.parquet", "{new}", "--against-baseline"], "does not exist"),
    (["{base}", "--against-baseline"], "--against-baseline expects BASELINE NEW"),
    (["{base}", "{new}", "--against-baseline", "--models", "nau,nac"], "drop --models"),
    (["{base}", "{new}", "--units", "mine"], "--units selects NEW's units"),
    (["{base}", "{new}", "--against-baseline", "--units", "nalu"],
     "unit 'nalu' has no finished runs in"),
    (["{base}", "{new}", "--against-baseline", "--units", ","], "bad --units"),
])
def test_bad_input_is_one_line_and_exit_2(baseline, tmp_path, capsys, args, message):
    new = write(runs("mine", "add", 20), tmp_path / "new")
    values = {"base": baseline, "new": new, "tmp": tmp_path}
    assert cli.main(["compare", *(a.format(**values) for a in args)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m benchmarks compare: error: ")
    assert message in err


def test_a_run_that_never_ran_is_bad_input(baseline, tmp_path):
    skipped = [record("skipped", seed=s, unit="mine", reason="no tf", params=CELL, spec=BUDGET)
               for s in range(3)]
    with pytest.raises(compare.CompareError, match="holds no finished runs"):
        compare.against_baseline(baseline, write(skipped, tmp_path / "new"))


def test_against_the_shipped_primer_baseline(tmp_path):
    """NAU's own published rows, relabelled as a new unit, against the published table: not
    distinguishable from nau in any of its 36 cells (18 per framework), and compared with
    every other unit that ran those cells (NMU never ran add or sub: not listed)."""
    base = frame.read_table(PRIMER)
    mine = base[base["unit"] == "nau"].assign(unit="mine")
    new = frame.save(mine, tmp_path / "new")[1]
    cmp = compare.against_baseline(PRIMER, new)
    summary = cmp.summary().set_index("baseline_unit")
    assert summary.loc["nau", ["cells", "better", "worse", "same"]].tolist() == [36, 0, 0, 36]
    assert "nmu" not in summary.index and {"nac", "nalu", "inalu"} <= set(summary.index)
    assert cmp.only_new == [] and "param_interpolation_range" in cmp.matched_on
    nac = cmp.table[(cmp.table["baseline_unit"] == "nac")]
    assert len(nac) == 36 and set(nac["runs_a"]) == {25}
