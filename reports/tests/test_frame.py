"""The tidy frame from a results directory with every kind of record, and its siblings."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from reports import frame
from reports.tests.conftest import record

METRICS = ["interpolation_mse", "extrapolation_mse", "interpolation_normalised",
           "extrapolation_normalised", "threshold", "success", "solved_at", "selected_step",
           "sparsity_error"]


def test_load_rows_and_columns(results_dir):
    df = frame.load(results_dir)
    assert len(df) == 5
    assert len(df.attrs["corrupt"]) == 1
    assert ("0" * 20 + ".json: not valid JSON") in df.attrs["corrupt"][0]
    expected = (["id", *frame.SPEC_FIELDS]
                + ["param_extrapolation_range", "param_input_size", "param_interpolation_range",
                   "param_op", "status", "reason", *METRICS,
                   "version_python", "version_numpy", "version_torch", "version_tf",
                   "machine_platform", "machine_processor", "machine_cpus", "machine_node",
                   *frame.THROUGHPUT])
    assert sorted(df.columns) == sorted(expected) and len(df.columns) == 12 + 1 + 4 + 2 + 9 + 8 + 5
    assert df["status"].value_counts().to_dict() == {"ok": 2, "diverged": 1, "skipped": 1,
                                                     "error": 1}
    by_status = df.set_index("seed")
    assert by_status.loc[0, "param_interpolation_range"] == "[1,2]"
    assert by_status.loc[0, "param_extrapolation_range"] == "[-6,-2]U[2,6]"
    assert math.isnan(by_status.loc[2, "extrapolation_mse"])  # NaN from the JSON survives
    assert by_status.loc[4, "reason"] == "RuntimeError: boom"
    assert pd.isna(by_status.loc[3, "success"]) and by_status.loc[0, "success"]
    assert str(df["success"].dtype) == "boolean" and df["solved_at"].dtype == float
    assert by_status.loc[3, "version_tf"] == "2.13.0" and pd.isna(by_status.loc[3, "version_torch"])


def test_readable_ranges():
    assert frame.readable([1.0, 2.0]) == "[1,2]"
    assert frame.readable([[0.5, 2.0]]) == "[0.5,2]"
    assert frame.readable([[-6, -2], [2, 6]]) == "[-6,-2]U[2,6]"
    assert frame.readable("add") == "add" and frame.readable(100) == 100


def test_curves_long(results_dir):
    long = frame.curves(results_dir)
    assert list(long.columns) == list(frame.CURVE_COLUMNS)
    assert len(long) == 3 * 3 * 2  # ok, ok, diverged records x 3 steps x 2 sets
    assert set(long["set"]) == {"interpolation", "extrapolation"}
    row = long[(long["seed"] == 1) & (long["step"] == 1000) & (long["set"] == "extrapolation")]
    assert row["mse"].tolist() == [0.5] and row["param_op"].tolist() == ["sub"]
    assert len(frame.curves([record()])) == 6 and frame.curves([]).empty


def test_save_round_trip(results_dir, tmp_path):
    df = frame.load(results_dir)
    csv, parquet = frame.save(df, tmp_path / "out")
    back = pd.read_parquet(parquet)
    assert back.shape == df.shape and list(back.columns) == list(df.columns)
    assert pd.read_csv(csv).shape == df.shape


def test_missing_directory(tmp_path):
    with pytest.raises(OSError):
        frame.load(tmp_path / "nope")


def test_load_benchmark_json(tmp_path):
    data = {"machine_info": {}, "benchmarks": [
        {"name": "test_speed[torch]", "stats": {"mean": 0.5, "stddev": 0.1, "rounds": 5,
                                                "min": 0.4},
         "extra_info": {"seed_steps_per_s": 1e4, "framework": "torch"}},
        {"name": "test_speed[tf]", "stats": {"mean": 0.7, "stddev": 0.2, "rounds": 3},
         "extra_info": {"unit": "nau"}}]}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data))
    df = frame.load_benchmark_json(path)
    assert list(df.columns) == ["name", "mean", "stddev", "rounds", "seed_steps_per_s",
                                "framework", "unit"]
    assert df["mean"].tolist() == [0.5, 0.7] and df.loc[1, "unit"] == "nau"
    assert pd.isna(df.loc[1, "framework"])


def test_a_saved_table_reads_back_as_its_records_hold_it(tmp_path):
    """results.parquet (a published baseline) reads back with lists, not Arrow's arrays,
    and draws the same report as the directory it came from."""
    from reports import html
    from reports.tests.conftest import report_records, write

    records = report_records()
    df = frame.load(write(records, tmp_path / "runs"))
    saved = frame.save(df, tmp_path / "saved")[1]
    table, curves = frame.read(saved)
    assert curves.empty and len(table) == len(df)
    curve = table.loc[table["magnitude_curve"].notna(), "magnitude_curve"].iloc[0]
    assert isinstance(curve["mse"], list) and curve["start"] == [1.0, 3.0, 5.0, 7.0]
    assert html.render(table, tmp_path / "r.html", curves=curves).exists()
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="is not a results table"):
        frame.read(tmp_path / "bad.parquet")


def test_normalised_errors_are_columns_even_in_older_records():
    """Records written before the normalised errors have NaN there, as floats, so that the
    report can rank by them."""
    old = record(seed=0)
    for key in ("interpolation_normalised", "extrapolation_normalised"):
        del old["metrics"][key]
    new = record(seed=1, extrapolation_normalised=37.5, normalised_100=12.0)
    df = frame.frame([old, new]).set_index("seed")
    assert df["extrapolation_normalised"].dtype == float
    assert math.isnan(df.loc[0, "extrapolation_normalised"])
    assert df.loc[1, "extrapolation_normalised"] == 37.5 and df.loc[1, "normalised_100"] == 12
    assert "interpolation_normalised" in frame.frame([old])


@pytest.mark.parametrize("value,ok", [(0.0, True), (250.0, True), (math.nan, True),
                                      (None, True), (-1.0, False), ("37", False),
                                      (True, False)])
def test_schema_reads_normalised_errors_as_numbers_at_least_0(value, ok):
    from benchmarks import schema

    for name in ("extrapolation_normalised", "normalised_1000"):
        problem = schema.problem(record(**{name: value}))
        assert (problem is None) == ok, (name, value, problem)
        if not ok:
            assert f"metric {name} must be a number >= 0 or null" in problem
