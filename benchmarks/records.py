"""The record: what one run's JSON file holds, who builds it and how it reads as a table row.

A record is the run's `RunSpec` fields and ``id``, ``status`` (one of `STATUSES`), ``reason``,
``metrics``, ``curve``, times and throughput, and the library versions and machine
(`environment`). The runner builds records with `build`; the report flattens them with
`row`; `benchmarks.store` writes and reads the files.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import platform
from dataclasses import asdict, dataclass, fields, replace
from importlib import metadata
from typing import Any

import numpy as np

from models import cpu, registry

FINAL = ("ok", "diverged")  # a rerun skips these
STATUSES = ("ok", "diverged", "error", "skipped")


def _freeze(value):
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _thaw(value):
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class RunSpec:
    task: str
    task_params: tuple  # sorted (name, value) pairs: hashable form of a dict
    unit: str  # the model: UNIT or UNIT-UNIT
    framework: str
    seed: int
    budget: str
    steps: int
    batch_size: int
    lr: float
    eval_interval: int
    schedule_scale: float
    common_data: bool = False
    device: str = "cpu"

    @classmethod
    def make(cls, task_params: dict[str, Any], **fields) -> RunSpec:
        return cls(task_params=_freeze(task_params), **fields)

    @property
    def params(self) -> dict[str, Any]:
        return {k: _thaw(v) for k, v in self.task_params}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["task_params"] = self.params
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        fields = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls.make(**fields)

    @property
    def id(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:20]

    @property
    def group_key(self) -> RunSpec:
        """Specs equal but for the seed train together."""
        return replace(self, seed=-1)

    def program_key(self, varying: tuple[str, ...]) -> RunSpec:
        """Specs equal but for the seed and the task parameters ``varying`` (the task's
        `program_params`) can train as one program."""
        return replace(self, seed=-1, task_params=tuple(
            (k, v) for k, v in self.task_params if k not in varying))


SPEC_FIELDS = tuple(f.name for f in fields(RunSpec) if f.name != "task_params")
THROUGHPUT = ("group_size", "train_seconds", "wall_seconds", "seed_steps_per_s", "samples_per_s")
_PACKAGES = {"torch": ("torch",), "tf": ("tensorflow", "tensorflow-cpu")}


def _version(names) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def environment(framework: str) -> dict:
    """Library versions and the machine, carried by every record."""
    return copy.deepcopy(_environment(framework))


@functools.cache
def _environment(framework: str) -> dict:  # package metadata is slow to read per record
    return {
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     framework: _version(_PACKAGES.get(framework, ()))},
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "cpus": os.cpu_count(), "node": platform.node(),
                    "cpu_model": cpu.cpuinfo_field(("model name",)) or platform.processor() or None,
                    "cpu_capability": _capability(framework)},
    }


def _capability(framework: str) -> str | None:
    """The framework's `models.cpu.capability`, None where it is not installed."""
    try:
        return None if registry.framework_missing(framework) else cpu.capability(framework)
    except ValueError:  # not a framework
        return None


def build(spec: RunSpec, status: str, reason: str = "", **fields_) -> dict:
    """The record of one run: the spec, its status and reason, the environment and
    ``fields_`` (metrics, curve, times, throughput, traceback)."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; known: {', '.join(STATUSES)}")
    return {"id": spec.id, **spec.to_dict(), "status": status, "reason": reason,
            **environment(spec.framework), **fields_}


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


def row(rec: dict) -> dict:
    """One record flattened for a table: spec fields, ``param_<name>`` per task parameter,
    status, reason, metrics, ``version_*``, ``machine_*`` and throughput; the curve and the
    traceback stay out."""
    section = lambda key, prefix: {f"{prefix}{k}": v for k, v in (rec.get(key) or {}).items()}  # noqa: E731
    return {"id": rec.get("id"), **{k: rec.get(k) for k in SPEC_FIELDS},
            **{f"param_{k}": readable(v) for k, v in (rec.get("task_params") or {}).items()},
            "status": rec.get("status"), "reason": rec.get("reason") or "",
            **(rec.get("metrics") or {}), **section("versions", "version_"),
            **section("machine", "machine_"), **{k: rec.get(k) for k in THROUGHPUT}}
