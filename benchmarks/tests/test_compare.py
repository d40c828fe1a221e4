"""``compare`` on hand-made record sets with known answers: a drop, a tie, two models."""
from __future__ import annotations

import math
import tomllib
from importlib import import_module
from pathlib import Path

import pytest

from benchmarks import cli, compare
from reports.tests.conftest import record, write

ROOT = Path(__file__).resolve().parents[2]


def runs(unit, op, wins, framework="torch", error=1e-4, speed=2000.0, **kw):
    """One record per entry of wins (True: a success), errors and throughput as given."""
    return [record(seed=s, unit=unit, op=op, framework=framework, success=won,
                   extrapolation_mse=error if won else 10.0, **kw) | {"seed_steps_per_s": speed}
            for s, won in enumerate(wins)]


def baseline():
    """A: nau solves add in 20 of 20 seeds, nac in 10 of 20; mul nau-nmu 15 of 20."""
    return [*runs("nau", "add", [True] * 20), *runs("nac", "add", [True] * 10 + [False] * 10),
            *runs("nau-nmu", "mul", [True] * 15 + [False] * 5)]


def worse():
    """B: nau on add drops to 2 of 20 and halves its throughput; the rest as in A."""
    return [*runs("nau", "add", [True] * 2 + [False] * 18, speed=1000.0),
            *runs("nac", "add", [True] * 10 + [False] * 10),
            *runs("nau-nmu", "mul", [True] * 15 + [False] * 5)]


def fisher_by_hand(k1, n1, k2, n2):
    """Two-sided Fisher: the hypergeometric tables no likelier than the observed one."""
    total, won = n1 + n2, k1 + k2
    prob = lambda k: math.comb(n1, k) * math.comb(n2, won - k) / math.comb(total, won)  # noqa: E731
    seen = prob(k1)
    return sum(p for k in range(max(0, won - n2), min(n1, won) + 1)
               if (p := prob(k)) <= seen * (1 + 1e-7))


@pytest.fixture
def dirs(tmp_path):
    return write(baseline(), tmp_path / "a"), write(worse(), tmp_path / "b")


def test_a_significant_drop_is_named(dirs):
    cmp = compare.directories(*dirs)
    t = cmp.table.set_index("configuration")
    assert list(cmp.worse["configuration"]) == ["static_arithmetic add nau torch"]
    drop = t.loc["static_arithmetic add nau torch"]
    assert (drop["successes_a"], drop["runs_a"], drop["successes_b"]) == (20, 20, 2)
    assert drop["p"] == pytest.approx(fisher_by_hand(20, 20, 2, 20), rel=1e-9)
    assert drop["p_holm"] == pytest.approx(3 * drop["p"], rel=1e-9)  # smallest of three
    assert drop["throughput_ratio"] == 0.5 and drop["error_change"] == "higher"
    tie = t.loc["static_arithmetic add nac torch"]
    assert tie["p"] == 1 and tie["p_holm"] == 1 and tie["change"] == ""
    assert tie["p_error"] == 1 and tie["throughput_ratio"] == 1
    assert len(t) == 3


def test_the_same_directory_changes_nothing(dirs):
    cmp = compare.directories(dirs[0], dirs[0])
    assert cmp.worse.empty and (cmp.table["p_holm"] == 1).all()
    assert (cmp.table["change"] == "").all() and (cmp.table["error_change"] == "").all()


def test_better_is_not_a_regression(dirs):
    cmp = compare.directories(dirs[1], dirs[0])
    assert cmp.worse.empty
    assert list(cmp.table.loc[cmp.table["change"] != "", "change"]) == ["better"]


def test_holm_keeps_a_borderline_drop_among_many(tmp_path):
    """8/10 -> 3/10 alone is p 0.07: no regression; Holm over more configurations only
    raises it, and 10/10 -> 3/10 (p 0.003) survives the correction over three."""
    a = [*runs("nau", "add", [True] * 8 + [False] * 2), *runs("nac", "add", [True] * 10),
         *runs("nalu", "add", [True] * 5 + [False] * 5)]
    b = [*runs("nau", "add", [True] * 3 + [False] * 7),
         *runs("nac", "add", [True] * 3 + [False] * 7),
         *runs("nalu", "add", [True] * 5 + [False] * 5)]
    cmp = compare.directories(write(a, tmp_path / "a"), write(b, tmp_path / "b"))
    t = cmp.table.set_index("configuration")
    assert t.loc["static_arithmetic add nau torch", "p"] == pytest.approx(
        fisher_by_hand(8, 10, 3, 10))
    assert list(cmp.worse["configuration"]) == ["static_arithmetic add nac torch"]


def test_diverged_runs_are_failures_and_the_worst_errors(tmp_path):
    a = runs("nalu", "add", [True] * 6)
    b = [record("diverged", seed=s, unit="nalu", op="add") for s in range(6)]
    cmp = compare.directories(write(a, tmp_path / "a"), write(b, tmp_path / "b"))
    row = cmp.table.iloc[0]
    assert (row["successes_b"], row["runs_b"]) == (0, 6) and row["change"] == "worse"
    assert math.isinf(row["median_b"]) and row["error_change"] == "higher"


def test_a_configuration_that_now_crashes_is_a_drop(tmp_path):
    a = [*runs("nau", "add", [True] * 6), *runs("nac", "sub", [True] * 2)]
    b = [*(record("error", seed=s, unit="nau", op="add", reason="RuntimeError: boom")
           for s in range(6)),
         *(record("skipped", seed=s, unit="nac", op="sub", reason="no tf") for s in range(2))]
    cmp = compare.directories(write(a, tmp_path / "a"), write(b, tmp_path / "b"))
    assert list(cmp.worse["configuration"]) == ["static_arithmetic add nau torch"]
    assert cmp.table["runs_b"][0] == 6 and cmp.table["successes_b"][0] == 0
    assert cmp.only_a == ["static_arithmetic sub nac torch"] and cmp.only_b == []
    assert "only in A (" in compare.text(cmp)  # skipped runs never ran: not compared


def test_a_bad_record_is_named_and_left_out(dirs, capsys):
    (dirs[1] / ("0" * 20 + ".json")).write_text('{"id": "truncated", "sta')
    cmp = compare.directories(*dirs)
    assert len(cmp.table) == 3
    assert "left out: " in capsys.readouterr().err


def test_configurations_match_on_parameters_and_frameworks(tmp_path):
    a = [*runs("nau", "add", [True] * 4), *runs("nau", "add", [True] * 4, framework="tf")]
    b = [*runs("nau", "add", [True] * 4, params={"input_size": 2}),
         *runs("nau", "add", [True] * 4, framework="tf")]
    cmp = compare.directories(write(a, tmp_path / "a"), write(b, tmp_path / "b"))
    assert list(cmp.table["configuration"]) == ["static_arithmetic add input_size=100 nau tf"]
    assert cmp.only_a == ["static_arithmetic add input_size=100 nau torch"]
    assert cmp.only_b == ["static_arithmetic add input_size=2 nau torch"]
    with pytest.raises(compare.CompareError, match="share no configuration"):
        compare.directories(write(a[:4], tmp_path / "c"), write(b[:4], tmp_path / "d"))


def test_two_models_in_one_directory(tmp_path):
    directory = write([*runs("nau", "add", [True] * 12),
                       *runs("nac", "add", [True] * 2 + [False] * 10),
                       *runs("nac", "mul", [False] * 4)], tmp_path / "r")
    cmp = compare.models(directory, "nau", "nac")
    assert list(cmp.table["configuration"]) == ["static_arithmetic add torch"]
    assert cmp.table["change"][0] == "worse" and (cmp.a, cmp.b) == ("nau", "nac")
    assert compare.models(directory, "nac", "nau").table["change"][0] == "better"
    with pytest.raises(compare.CompareError, match="'nalu' has no finished runs"):
        compare.models(directory, "nau", "nalu")


def test_cli_exit_status_table_and_html(dirs, tmp_path, capsys):
    a, b = map(str, dirs)
    assert cli.main(["compare", a, a]) == 0
    out = capsys.readouterr().out
    assert f"A = {a}" in out and "no configuration significantly worse in B (3 compared" in out

    html = tmp_path / "out" / "compare.html"
    assert cli.main(["compare", a, b, "-o", str(html)]) == 1
    out = capsys.readouterr().out
    line = next(r for r in out.splitlines() if r.startswith("static_arithmetic add nau torch"))
    assert "20/20 100%" in line and "2/20 10%" in line and "worse" in line and "0.50" in line
    assert out.splitlines()[-2].startswith("1 of 3 configurations significantly worse in B")
    assert out.splitlines()[-2].endswith(": static_arithmetic add nau torch")
    page = html.read_text()
    assert '<tr class="worse"><td>static_arithmetic add nau torch</td>' in page
    assert "<script" not in page and "://" not in page

    directory = write([*runs("nau", "add", [True] * 12),
                       *runs("nac", "add", [False] * 12)], tmp_path / "m")
    assert cli.main(["compare", str(directory), "--models", "nau,nac"]) == 1
    assert cli.main(["compare", str(directory), "--models", "nac,nau"]) == 0


@pytest.mark.parametrize("args, message", [
    (["only-one"], "expected two results directories"),
    (["{a}", "{tmp}/nowhere"], "does not exist"),
    (["{a}", "{b}", "--models", "nau,nac"], "within one results directory"),
    (["{a}", "--models", "nau"], "expected two different models"),
    (["{a}", "--models", "nau,nalu"], "'nalu' has no finished runs"),
    (["{a}", "{b}", "--alpha", "2"], "bad --alpha 2"),
    (["{a}", "{b}", "-o", "{tmp}"], "is a directory"),
])
def test_bad_input_is_one_line_and_exit_2(dirs, tmp_path, capsys, args, message):
    values = {"a": dirs[0], "b": dirs[1], "tmp": tmp_path}
    assert cli.main(["compare", *(a.format(**values) for a in args)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m benchmarks compare: error: ")
    assert message in err


def test_console_script_is_the_cli():
    """pyproject's `arithbench` names benchmarks.cli.main, which returns an exit status."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["arithbench"].partition(":")
    main = getattr(import_module(module), name)
    assert main is cli.main and main(["list"]) == 0


def test_a_saved_table_compares_as_its_directory(dirs, tmp_path):
    """A published baseline is the results.parquet `report` writes: compare reads it as
    the directory it came from, and a file that is not such a table is bad input."""
    from reports import frame

    saved = frame.save(frame.load(dirs[1]), tmp_path / "published")[1]
    from_table = compare.directories(dirs[0], saved)
    from_dir = compare.directories(*dirs)
    assert from_table.table.equals(from_dir.table)
    assert list(from_table.worse["configuration"]) == ["static_arithmetic add nau torch"]
    other = tmp_path / "other.parquet"
    frame.save(frame.load(dirs[1]).drop(columns=["status"]), tmp_path / "x")[1].rename(other)
    with pytest.raises(compare.CompareError, match="no column"):
        compare.directories(dirs[0], other)
    assert cli.main(["report", str(saved), "-o", str(tmp_path / "r.html")]) == 0
    assert "nau" in (tmp_path / "r.html").read_text()
