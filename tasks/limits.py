"""What one configuration may ask of this machine, checked before anything is trained.

A task estimates the bytes its largest arrays take (`Task.footprint`: evaluation sets,
one training chunk, weights with Adam's moments, per the parameter that sizes them);
`check` refuses an estimate above `memory_limit()` in one line that names the parameters
and the figures. Sequence lengths are also capped (`MAX_LENGTH`): time grows with them
even where memory does not. Ranges are checked in float32, the dtype they are drawn in.
"""
from __future__ import annotations

import os
import re

import numpy as np

from tasks.base import TaskError

ENV = "ARITHBENCH_MEMORY"  # e.g. 4GB, 512MB or a number of bytes
MAX_LENGTH = 10_000  # longest sequence evaluated: 10x the longest published test length
_UNITS = {"": 1, "B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a small machine
        return 8 * 2**30


def memory_limit() -> int:
    """$ARITHBENCH_MEMORY when set, else half of this machine's physical memory."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return physical_memory() // 2
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)B?", text.upper())
    if not match or float(match[1]) <= 0:
        raise TaskError(f"bad ${ENV} {text!r}; expected a size such as 4GB, 512MB or bytes")
    return int(float(match[1]) * _UNITS[match[2] + "B" if match[2] else ""])


def size(nbytes: float) -> str:
    for unit in ("TB", "GB", "MB", "KB"):
        if nbytes >= _UNITS[unit]:
            return f"{nbytes / _UNITS[unit]:.1f} {unit}"
    return f"{int(nbytes)} B"


def check(task: str, needs: dict[str, float]) -> None:
    """Refuse when the estimated bytes (what -> bytes) exceed the limit."""
    total = sum(needs.values())
    limit = memory_limit()
    if total > limit:
        parts = ", ".join(f"{what} {size(n)}" for what, n in
                          sorted(needs.items(), key=lambda kv: -kv[1]) if n >= total / 100)
        origin = f"${ENV}" if os.environ.get(ENV, "").strip() else "half this machine's memory"
        raise TaskError(f"{task}: this configuration needs about {size(total)} of memory "
                        f"({parts}), more than the {size(limit)} allowed ({origin})")


def length(value: int, name: str) -> None:
    if value > MAX_LENGTH:
        raise TaskError(f"bad {name} {value}: at most {MAX_LENGTH:,} (10x the longest "
                        f"published test length)")


def float32_ranges(ranges, name: str) -> None:
    """Each (low, high) finite in float32, low < high there, and high - low finite."""
    with np.errstate(over="ignore"):
        for low, high in ranges:
            lo, hi = np.float32(low), np.float32(high)
            if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(hi - lo)):
                raise TaskError(f"bad {name} [{low:g}, {high:g}]: inputs are drawn in float32, "
                                f"where it overflows (|values| and high - low must stay "
                                f"below {np.finfo(np.float32).max:.3g})")
            if not lo < hi:
                raise TaskError(f"bad {name} [{float(low)!r}, {float(high)!r}]: low and high "
                                f"are equal in float32, the dtype inputs are drawn in")
