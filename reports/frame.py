"""Records -> tidy pandas tables, so that nothing else in reports depends on the JSON shape."""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import schema
from benchmarks.records import SPEC_FIELDS, THROUGHPUT, readable, row
from benchmarks.schema import NORMALISED
from benchmarks.store import Store, atomic_write

CURVE_COLUMNS = ("id", "unit", "framework", "task", "param_op", "seed", "step", "set", "mse")
TABLES = ("results.csv", "results.parquet")  # what `save` writes beside a report
BENCHMARK_COLUMNS = ("name", "mean", "stddev", "rounds")
_SPAN = re.compile(r"\[([^,\]]+),([^\]]+)\]")


def _records(source) -> tuple[list[dict], list[str]]:
    """A results directory or records as given. A directory's records are checked as they are
    read (benchmarks.schema); each one left out is listed as "path: why"."""
    if isinstance(source, (str, os.PathLike)):
        store = Store(source, create=False)
        records = list(store.records())
        return records, [f"{p}: {store.problems.get(p, 'unreadable')}" for p in store.corrupt]
    return list(source), []


def frame(records: Iterable[dict]) -> pd.DataFrame:
    """The tidy table of records already in memory."""
    rows = [row(r) for r in records]
    df = pd.DataFrame(rows, columns=None if rows else ["id", *SPEC_FIELDS, "status", "reason"])
    metrics = {k for r in records if isinstance(r, dict) for k in (r.get("metrics") or {})}
    if len(df):  # every task's normalised errors, NaN in records written before them
        metrics |= set(NORMALISED)
        df = df.assign(**{c: np.nan for c in NORMALISED if c not in df})
    _fill_omitted(df)
    for col in [*metrics, *THROUGHPUT]:  # missing values (skipped runs) must not make them object
        kind = pd.api.types.infer_dtype(df[col], skipna=True) if col in df else None
        if kind == "boolean":
            df[col] = df[col].astype("boolean")
        elif kind in ("integer", "floating", "mixed-integer-float", "empty"):
            df[col] = df[col].astype(float)
    return df.copy()  # one block per dtype: the columns set one by one above fragment it


def _fill_omitted(df: pd.DataFrame) -> None:
    """An option that a task leaves out of its spec while off (``omitted_when_off``, e.g.
    static_arithmetic's ``reinit``) gets its default where another record has it on, so
    that a column never mixes values with missing ones."""
    import tasks

    for name, cls in tasks.TASKS.items():
        for key in getattr(cls, "omitted_when_off", ()):
            col = f"param_{key}"
            if col in df and "task" in df:
                rows = (df["task"] == name) & df[col].isna()
                if rows.any():  # as text, so that the column keeps one type (Parquet)
                    df[col] = df[col].map(_text).astype(object)
                    df.loc[rows, col] = _text(readable(cls.parameters[key]))


def _text(value):
    """A parameter value as text (missing stays missing): 8.0 -> "8", "on" -> "on"."""
    if not isinstance(value, str) and pd.isna(value):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def load(results_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per record of a results directory; files left out (unreadable or failing
    benchmarks.schema) go to df.attrs["corrupt"] as "path: why"."""
    return read(results_dir)[0]


REQUIRED = ("id", "task", "unit", "framework", "seed", "status")  # of a saved table


def read(results_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tidy table and the curves from one pass over the files (reading is the slow part).
    A ``results.parquet`` that `save` wrote (a published baseline) reads as its table,
    without curves."""
    if Path(results_dir).suffix == ".parquet":
        return read_table(results_dir), pd.DataFrame(columns=list(CURVE_COLUMNS))
    records, corrupt = _records(results_dir)
    df = frame(records)
    df.attrs["corrupt"] = corrupt
    return df, _curves(records)


def curves(source) -> pd.DataFrame:
    """Learning curves in long form (one row per record, step and evaluation set)."""
    return _curves(_records(source)[0])


def _curves(records: list[dict]) -> pd.DataFrame:
    """Flattened with list comprehensions, not one DataFrame per record: 10,000 records in ms."""
    parts = [(r, name, values) for r in records if r.get("curve")
             for name, values in r["curve"].items() if name != "step"]
    if not parts:
        return pd.DataFrame(columns=list(CURVE_COLUMNS))
    meta = pd.DataFrame([{**{k: r.get(k) for k in ("id", "unit", "framework", "task")},
                          "param_op": (r.get("task_params") or {}).get("op"),
                          "seed": r.get("seed"), "set": name} for r, name, _ in parts])
    long = meta.loc[meta.index.repeat([len(v) for _, _, v in parts])].reset_index(drop=True)
    steps = chain.from_iterable(r["curve"]["step"] for r, _, _ in parts)
    long["step"] = np.fromiter(steps, np.int64)
    long["mse"] = np.array(list(chain.from_iterable(v for _, _, v in parts)), dtype=float)
    return long[list(CURVE_COLUMNS)]


def spans(text) -> list[tuple[float, float]]:
    """The inverse of readable() for ranges: "[-6,-2]U[2,6]" -> [(-6, -2), (2, 6)]."""
    return [(float(lo), float(hi)) for lo, hi in _SPAN.findall(str(text))]


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A table `save` wrote, checked as records are (`benchmarks.schema.check_table`);
    ValueError naming the file and the first problem when it is not one."""
    try:
        df = pd.read_parquet(path, page_checksum_verification=True)
    except Exception as err:  # noqa: BLE001 (Arrow's errors on a damaged file vary in type)
        why = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise ValueError(f"{str(path)!r} is not a results table: {why}") from None
    missing = [c for c in REQUIRED if c not in df]
    if missing:
        raise ValueError(f"{str(path)!r} is not a results table: no column(s) "
                         f"{', '.join(missing)}")
    try:
        schema.check_table(df)
    except schema.RecordError as err:
        raise ValueError(f"{str(path)!r} is not a results table: {err}") from None
    for col in df.select_dtypes(include=["object", "str"]).columns:  # Arrow: lists as arrays
        df[col] = df[col].map(_as_json)
    df = df.copy()  # as `frame`'s
    df.attrs["corrupt"] = []
    return df


def _as_json(value):
    """A value read back from Parquet as the record held it: lists, not arrays."""
    if isinstance(value, np.ndarray):
        return [_as_json(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    return value


def save(df: pd.DataFrame, directory: str | os.PathLike) -> tuple[Path, Path]:
    """results.csv for people and spreadsheets, results.parquet for typed reloading (with
    page checksums, which `read_table` verifies); each written atomically (WriteError
    naming the file when it cannot be)."""
    directory = Path(directory)
    csv, parquet = directory / TABLES[0], directory / TABLES[1]
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
    atomic_write(parquet, lambda tmp: df.to_parquet(tmp, index=False, write_page_checksum=True))
    return csv, parquet


def load_benchmark_json(path: str | os.PathLike) -> pd.DataFrame:
    """pytest-benchmark's JSON as one row per benchmark, extra_info keys as columns."""
    rows = []
    for bench in json.loads(Path(path).read_text()).get("benchmarks", []):
        row = {"name": bench["name"], **{k: bench["stats"][k] for k in BENCHMARK_COLUMNS[1:]}}
        row.update({k: v for k, v in (bench.get("extra_info") or {}).items() if k not in row})
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else list(BENCHMARK_COLUMNS))
