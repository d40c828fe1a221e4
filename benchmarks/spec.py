"""RunSpec: one run's full description, hashable, JSON-able, with a stable id."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Any

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
