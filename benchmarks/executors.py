"""Where groups run. ``local`` (in-process) is the default and the only one so far."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

EXECUTORS = ("local",)


def local(fn: Callable, items: Iterable) -> Iterator:
    """Sequential, in this process: results come back in order as each finishes."""
    for item in items:
        yield fn(item)


def get(name: str):
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}")
    return {"local": local}[name]
