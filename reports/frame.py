"""Records -> tidy pandas tables, so that nothing else in reports depends on the JSON shape."""
from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from benchmarks.spec import RunSpec
from benchmarks.store import Store

SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(RunSpec) if f.name != "task_params")
THROUGHPUT = ("group_size", "train_seconds", "wall_seconds", "seed_steps_per_s", "samples_per_s")
CURVE_COLUMNS = ("id", "unit", "framework", "task", "param_op", "seed", "step", "set", "mse")
BENCHMARK_COLUMNS = ("name", "mean", "stddev", "rounds")


def readable(value):
    """A range as "[1,2]" or "[-6,-2]U[2,6]", so cells and groupby keys stay scalar."""
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (list, tuple)) for v in value):
            return "U".join(readable(v) for v in value)
        return "[" + ",".join(f"{v:g}" if isinstance(v, (int, float)) else str(v)
                              for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def _records(source) -> tuple[list[dict], list[str]]:
    """A results directory (through Store, which lists unreadable files) or records as given."""
    if isinstance(source, (str, os.PathLike)):
        store = Store(source, create=False)
        records = list(store.records())
        return records, [str(p) for p in store.corrupt]
    return list(source), []


def _row(rec: dict) -> dict:
    """One record flattened; the curve and the traceback stay out of the tidy table."""
    section = lambda key, prefix: {f"{prefix}{k}": v for k, v in (rec.get(key) or {}).items()}  # noqa: E731
    return {"id": rec.get("id"), **{k: rec.get(k) for k in SPEC_FIELDS},
            **{f"param_{k}": readable(v) for k, v in (rec.get("task_params") or {}).items()},
            "status": rec.get("status"), "reason": rec.get("reason") or "",
            **(rec.get("metrics") or {}), **section("versions", "version_"),
            **section("machine", "machine_"), **{k: rec.get(k) for k in THROUGHPUT}}


def frame(records: Iterable[dict]) -> pd.DataFrame:
    """The tidy table of records already in memory."""
    rows = [_row(r) for r in records]
    df = pd.DataFrame(rows, columns=None if rows else ["id", *SPEC_FIELDS, "status", "reason"])
    metrics = {k for r in records if isinstance(r, dict) for k in (r.get("metrics") or {})}
    for col in [*metrics, *THROUGHPUT]:  # missing values (skipped runs) must not make them object
        kind = pd.api.types.infer_dtype(df[col], skipna=True) if col in df else None
        if kind == "boolean":
            df[col] = df[col].astype("boolean")
        elif kind in ("integer", "floating", "mixed-integer-float", "empty"):
            df[col] = df[col].astype(float)
    return df


def load(results_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per record of a results directory; unreadable files go to df.attrs["corrupt"]."""
    records, corrupt = _records(results_dir)
    df = frame(records)
    df.attrs["corrupt"] = corrupt
    return df


def curves(source) -> pd.DataFrame:
    """Learning curves in long form (one row per record, step and evaluation set)."""
    parts = []
    for rec in _records(source)[0]:
        if not rec.get("curve"):
            continue
        long = pd.DataFrame(rec["curve"]).melt(id_vars="step", var_name="set", value_name="mse")
        keys = {k: rec.get(k) for k in ("id", "unit", "framework", "task", "seed")}
        parts.append(long.assign(**keys, param_op=(rec.get("task_params") or {}).get("op")))
    if not parts:
        return pd.DataFrame(columns=list(CURVE_COLUMNS))
    return pd.concat(parts, ignore_index=True)[list(CURVE_COLUMNS)]


def save(df: pd.DataFrame, directory: str | os.PathLike) -> tuple[Path, Path]:
    """results.csv for people and spreadsheets, results.parquet for typed reloading."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    csv, parquet = directory / "results.csv", directory / "results.parquet"
    df.to_csv(csv, index=False)
    df.to_parquet(parquet, index=False)
    return csv, parquet


def load_benchmark_json(path: str | os.PathLike) -> pd.DataFrame:
    """pytest-benchmark's JSON as one row per benchmark, extra_info keys as columns."""
    rows = []
    for bench in json.loads(Path(path).read_text()).get("benchmarks", []):
        row = {"name": bench["name"], **{k: bench["stats"][k] for k in BENCHMARK_COLUMNS[1:]}}
        row.update({k: v for k, v in (bench.get("extra_info") or {}).items() if k not in row})
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else list(BENCHMARK_COLUMNS))
