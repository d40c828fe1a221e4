"""What a record must hold to be trusted when read back (by `run` on resume and by `report`).

`problem(record)` returns None for a good record, else one line saying what is wrong;
`load(path, root)` reads one record file and checks it. A record that fails is left out
(named with its reason) and, by `run`, trained again. The rules:

- a JSON object with ``id`` (20 hex digits, the file's name and the hash of its spec
  fields), ``status`` one of `STATUSES` and ``reason`` a string;
- the spec fields with their types (``seed`` an integer, ``task_params`` an object, ...);
- ``ok`` and ``diverged`` records carry ``metrics`` with ``success`` (true or false) and
  ``interpolation_mse`` / ``extrapolation_mse`` (numbers or null); the normalised errors
  (`NORMALISED`, ``normalised_<L>``) are numbers >= 0, NaN or null where a record has
  them (records written before them lack them); every other metric is a
  number, a boolean or null, text only where listed in `TEXT_METRICS`, and a list or an
  object of numbers only where listed in `CONTAINER_METRICS`;
- ``curve`` an object of equal-length lists of numbers (or null), ``step`` integers;
- every integer within 64 bits; the file at most `MAX_BYTES` and inside the directory
  (a symlink that leads out of it is refused).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
from functools import lru_cache
from pathlib import Path

import numpy as np

from benchmarks.records import STATUSES, RunSpec

MAX_BYTES = 64 * 2**20  # a paper-budget record with its curves is well under 1 MB
MAX_INT = 2**63 - 1
_ID = re.compile(r"^[0-9a-f]{20}$")
SPEC_TYPES = {  # RunSpec's fields (task_params aside) and the JSON types they take
    "task": str, "unit": str, "framework": str, "seed": int, "budget": str, "steps": int,
    "batch_size": int, "lr": float, "eval_interval": int, "schedule_scale": float,
    "common_data": bool, "device": str,
}
NUMBER_FIELDS = ("group_size", "train_seconds", "wall_seconds", "seed_steps_per_s",
                 "samples_per_s")
HEADLINE = ("interpolation_mse", "extrapolation_mse")
TEXT_METRICS = frozenset({"digits_source", "digits_location"})
# [NALU]'s normalised error (`tasks.base.normalised`), every task's, and per test length L
# ``normalised_<L>`` (recurrent arithmetic, MNIST); per length or T also as the list
# "normalised" of the containers per_length (MNIST) and success_by_T (grid world)
NORMALISED = ("interpolation_normalised", "extrapolation_normalised")
_NORMALISED_L = re.compile(r"^normalised_\d+$")
# metrics that are lists or objects of numbers (curves and per-length tables)
CONTAINER_METRICS = frozenset({"magnitude_curve", "per_length", "success_by_T", "train_T",
                               "reinit_steps", "extrapolation_numbers"})
# the lists a container must have (the report's figures read them), the first an axis of
# numbers without nulls
CONTAINER_LISTS = {"magnitude_curve": ("start", "mse"), "success_by_T": ("T", "success")}


class RecordError(ValueError):
    """A record that cannot be trusted; the message says why in one line."""


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _big_int(value, where: str = "") -> str | None:
    """The first integer outside 64 bits, anywhere in value (pandas would overflow on it)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        return where or "a value"
    if isinstance(value, dict):
        for k, v in value.items():
            found = _big_int(v, f"{where}.{k}" if where else str(k))
            if found:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _big_int(v, f"{where}[{i}]")
            if found:
                return found
    return None


_NUMBER_TYPES = frozenset({int, float})
_NUMBER_OR_NULL = frozenset({int, float, type(None)})


def _numbers(values, where: str, nulls: bool = True) -> None:
    if not isinstance(values, list):
        raise RecordError(f"{where} must be a list of numbers, not {_kind(values)}")
    allowed = _NUMBER_OR_NULL if nulls else _NUMBER_TYPES
    if set(map(type, values)) <= allowed:  # JSON gives exact types: bool is not int here
        return
    bad = next(v for v in values if type(v) not in allowed)
    raise RecordError(f"{where} must hold numbers, not {_kind(bad)} ({str(bad)[:40]!r})")


def _container(name: str, value) -> None:
    if value is None:
        return
    if isinstance(value, list):
        return _numbers(value, f"metric {name}")
    if not isinstance(value, dict):
        raise RecordError(f"metric {name} must be a list or an object, not {_kind(value)}")
    lengths = set()
    for key, v in value.items():
        if isinstance(v, list):
            _numbers(v, f"metric {name}.{key}")
            lengths.add(len(v))
        elif not (_is_number(v) or v is None):
            raise RecordError(f"metric {name}.{key} must be a number or a list, not {_kind(v)}")
    if len(lengths) > 1:
        raise RecordError(f"metric {name}: its lists differ in length {sorted(lengths)}")
    needed = CONTAINER_LISTS.get(name, ())
    missing = [k for k in needed if not isinstance(value.get(k), list)]
    if missing:
        raise RecordError(f"metric {name} lacks its list(s) {', '.join(missing)}")
    if needed:
        _numbers(value[needed[0]], f"metric {name}.{needed[0]}", nulls=False)


def _metrics(record: dict) -> None:
    metrics = record.get("metrics")
    finished = record["status"] in ("ok", "diverged")
    if metrics is None and not finished:
        return
    if not isinstance(metrics, dict):
        raise RecordError(f"metrics must be an object, not {_kind(metrics)}")
    if finished:
        missing = [k for k in ("success", *HEADLINE) if k not in metrics]
        if missing:
            raise RecordError(f"a {record['status']!r} record lacks metric(s) {missing}")
    for name, value in metrics.items():
        if name in CONTAINER_METRICS:
            _container(name, value)
        elif name.startswith("success"):
            if not (isinstance(value, bool) or value is None):
                raise RecordError(f"metric {name} must be true or false, not {_kind(value)} "
                                  f"({str(value)[:40]!r})")
        elif name in NORMALISED or _NORMALISED_L.match(name):
            if not (value is None or _is_number(value) and not value < 0):
                raise RecordError(f"metric {name} must be a number >= 0 or null, not "
                                  f"{str(value)[:40]!r}")
        elif name in TEXT_METRICS:
            if not isinstance(value, str):
                raise RecordError(f"metric {name} must be text, not {_kind(value)}")
        elif not (_is_number(value) or isinstance(value, bool) or value is None):
            raise RecordError(f"metric {name} must be a number, not {_kind(value)} "
                              f"({str(value)[:40]!r})")


def _curve(record: dict) -> None:
    curve = record.get("curve")
    if curve is None:
        return
    if not isinstance(curve, dict):
        raise RecordError(f"curve must be an object, not {_kind(curve)}")
    if not curve:
        return
    if "step" not in curve:
        raise RecordError("curve lacks its step list")
    for name, values in curve.items():
        _numbers(values, f"curve {name}", nulls=name != "step")
    if not all(isinstance(s, int) for s in curve["step"]):
        raise RecordError("curve step must hold integers")
    lengths = {len(v) for v in curve.values()}
    if len(lengths) > 1:
        raise RecordError(f"curve lists differ in length {sorted(lengths)}")


@lru_cache(maxsize=4096)
def _task_refuses(task: str, params: str) -> str | None:
    """The task's own check of its parameters (`Task.validate`) is their schema: a record
    whose task would refuse them, or of a task not registered, is not read. Cached per
    configuration: a directory holds many seeds of few configurations."""
    import tasks

    if task not in tasks.TASKS:
        return f"unknown task {task[:40]!r}; known: {', '.join(tasks.TASKS)}"
    try:
        tasks.TASKS[task](**json.loads(params, parse_constant=_constant))
    except Exception as err:  # noqa: BLE001 (any refusal of untrusted values, said in one line)
        text = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        return f"task_params refused by {task}: {text}"
    return None


def problem(record, name: str | None = None) -> str | None:
    """None when the record can be trusted, else why not (one line). ``name``: the file's
    stem, which must be the record's id."""
    try:
        check(record, name)
    except RecordError as err:
        return str(err)
    return None


def check(record, name: str | None = None, parsed: bool = False) -> None:
    """Raise RecordError (one line) unless the record follows the rules above. ``parsed``:
    it comes from `load`, whose parser has refused integers beyond 64 bits already."""
    if not isinstance(record, dict):
        raise RecordError(f"not a record: {_kind(record)}, not a JSON object")
    status = record.get("status")
    if status not in STATUSES:
        raise RecordError(f"unknown status {str(status)[:40]!r}; known: {', '.join(STATUSES)}")
    missing = [k for k in ("id", "reason", "task_params", *SPEC_TYPES) if k not in record]
    if missing:
        raise RecordError(f"missing field(s) {', '.join(missing)}")
    big = None if parsed else _big_int(record)
    if big:
        raise RecordError(f"{big} is an integer beyond 64 bits")
    rid = record["id"]
    if not isinstance(rid, str) or not _ID.match(rid):
        raise RecordError(f"bad id {str(rid)[:40]!r}; expected 20 hex digits")
    if name is not None and name != rid:
        raise RecordError(f"id {rid} differs from the file's name {name}")
    for key, kind in SPEC_TYPES.items():
        value = record[key]
        ok = (_is_number(value) if kind is float else
              isinstance(value, int) and not isinstance(value, bool) if kind is int else
              isinstance(value, kind))
        if not ok:
            raise RecordError(f"{key} must be {_kind(kind())}, not {_kind(value)} "
                              f"({str(value)[:40]!r})")
    if not isinstance(record["task_params"], dict):
        raise RecordError(f"task_params must be an object, not {_kind(record['task_params'])}")
    reason = _task_refuses(record["task"], json.dumps(record["task_params"], sort_keys=True))
    if reason:
        raise RecordError(reason)
    if not isinstance(record["reason"], str):
        raise RecordError(f"reason must be text, not {_kind(record['reason'])}")
    for key in NUMBER_FIELDS:
        value = record.get(key)
        if not (value is None or _is_number(value)):
            raise RecordError(f"{key} must be a number, not {_kind(value)}")
    for key in ("versions", "machine"):
        value = record.get(key, {})
        if not isinstance(value, dict) or any(isinstance(v, (dict, list))
                                              for v in value.values()):
            raise RecordError(f"{key} must be an object of plain values")
    for key in ("lr", "schedule_scale"):
        if not math.isfinite(record[key]):
            raise RecordError(f"{key} must be finite, not {record[key]}")
    _metrics(record)
    _curve(record)
    try:
        spec_id = spec_id_of(record)
    except (TypeError, ValueError):
        raise RecordError("its spec fields cannot be hashed") from None
    if spec_id != rid:
        raise RecordError(f"id {rid} is not the hash of its spec fields ({spec_id})")


def spec_id_of(record: dict) -> str:
    """``RunSpec.from_dict(record).id`` without `dataclasses.asdict`'s deep copies, the
    costly part of reading a record; equal by construction and by test."""
    spec = RunSpec.from_dict(record)
    canonical = {f: getattr(spec, f) for f in RunSpec.__dataclass_fields__}
    canonical["task_params"] = spec.params
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _constant(token: str):
    return float(token)  # NaN, Infinity, -Infinity: records are written with allow_nan


def _integer(text: str) -> int:
    """JSON integers, refused beyond 64 bits as they are parsed (pandas would overflow)."""
    value = int(text)
    if abs(value) > MAX_INT:
        raise RecordError(f"{text[:20]}... ({len(text)} digits) is an integer beyond 64 bits")
    return value


def load(path: str | os.PathLike, root: str | os.PathLike | None = None) -> dict:
    """One record file, read and checked; RecordError (one line) when it cannot be trusted.

    ``root``: the directory it is listed in; a symlink leading out of it is refused."""
    path = Path(path)
    try:
        if root is not None and path.is_symlink():
            target, base = path.resolve(), Path(root).resolve()
            if not target.is_relative_to(base):
                raise RecordError(f"a symlink to {target}, outside {base}: not followed")
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            raise RecordError("not a regular file")
        size = info.st_size
        if size > MAX_BYTES:
            raise RecordError(f"{size:,} bytes, more than a record's {MAX_BYTES:,}")
        with open(path, "rb") as fh:
            record = json.loads(fh.read(MAX_BYTES + 1).decode("utf-8"),
                                parse_constant=_constant, parse_int=_integer)
    except RecordError:
        raise
    except OSError as err:
        raise RecordError(f"cannot read it: {err.strerror or err}") from None
    except (ValueError, RecursionError) as err:  # bad JSON, bad UTF-8, a 5000-digit number
        raise RecordError(f"not valid JSON: {str(err).splitlines()[0][:120]}") from None
    check(record, path.stem, parsed=True)
    return record


def check_table(df) -> None:
    """Raise RecordError (one line naming the column and a row) unless a saved table (a
    ``results.parquet``) holds what records would: the spec fields with their types, ids of
    20 hex digits, known statuses, ``success`` true or false and the headline errors as
    numbers wherever a run finished, numeric metrics (text and containers only where the
    record rules allow them), finite learning rates."""
    import pandas as pd

    api = pd.api.types
    missing = [c for c in ("id", "status", *SPEC_TYPES) if c not in df]
    if missing:
        raise RecordError(f"no column(s) {', '.join(missing)}")

    def bad(col: str, mask, why: str) -> None:
        if mask.any():
            i = int(mask.to_numpy().nonzero()[0][0])
            value = str(df[col].iloc[i])[:40]
            raise RecordError(f"column {col} {why} (row {i}: {value!r})")

    for col, kind in (("id", str), ("status", str), ("reason", str),
                      *SPEC_TYPES.items()):
        if col not in df:
            continue
        values = df[col]
        if kind is str:
            bad(col, ~values.map(lambda v: isinstance(v, str)), "must hold text")
        elif kind is bool:
            bad(col, ~values.map(lambda v: isinstance(v, (bool, np.bool_))), "must hold "
                "true or false")
        elif kind is int:
            if not api.is_integer_dtype(values) or api.is_bool_dtype(values):
                bad(col, values.map(lambda v: True), "must hold integers")
        elif not api.is_numeric_dtype(values) or api.is_bool_dtype(values):
            bad(col, values.map(lambda v: True), "must hold numbers")
    bad("id", ~df["id"].str.fullmatch(_ID.pattern), "must hold ids of 20 hex digits")
    bad("status", ~df["status"].isin(STATUSES), f"must be one of {', '.join(STATUSES)}")
    for col in ("lr", "schedule_scale"):
        bad(col, ~df[col].map(lambda v: math.isfinite(v)), "must hold finite numbers")
    finished = df["status"].isin(("ok", "diverged"))
    if finished.any():
        for col in ("success", *HEADLINE):
            if col not in df:
                raise RecordError(f"no column {col}, which finished runs carry")
    for col in df.columns:
        if col in SPEC_TYPES or col in ("id", "status", "reason"):
            continue
        values = df[col]
        if col.startswith("success"):
            good = values.map(lambda v: v is None or v is pd.NA or isinstance(v, (bool, np.bool_))
                              or (isinstance(v, float) and math.isnan(v)))
            bad(col, ~good, "must hold true or false")
            if col == "success":
                bad(col, finished & values.isna(), "must be true or false where a run "
                    "finished")
        elif col in CONTAINER_METRICS:
            good = [_container_cell(col, v) for v in values]
            bad(col, ~pd.Series(good, index=values.index), "must hold lists or objects of "
                "numbers")
        elif col in HEADLINE or col in NUMBER_FIELDS:
            if not api.is_numeric_dtype(values) or api.is_bool_dtype(values):
                bad(col, values.map(lambda v: not _is_number(v) and v is not None
                                    and v is not pd.NA), "must hold numbers")
        else:  # a parameter, a version, a machine field or another metric: plain values
            bad(col, values.map(lambda v: isinstance(v, (dict, list, tuple))
                                or hasattr(v, "shape") and getattr(v, "ndim", 0) > 0),
                "must hold plain values")


def _container_cell(name: str, value) -> bool:
    """A container metric as read back from Parquet (lists or arrays of numbers), or none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    if isinstance(value, np.ndarray):
        value = value.tolist()
    try:
        _container(name, json.loads(json.dumps(value, default=_plain)))
    except (RecordError, TypeError, ValueError):
        return False
    return True


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value).__name__)
