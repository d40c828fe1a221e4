"""Checkpoints of a training program: its whole state in one file, written atomically, so a
program stopped by Ctrl-C, SIGTERM, a crash or a lost worker resumes where it stopped and
ends with the records an uninterrupted run writes, bit for bit.

What is saved is `models.engine.fit`'s (`engine.FitState`: the next chunk of steps, the
evaluations so far, the selection, divergence and re-initialisation state), the trainer's
(`get_state()`: every replica's parameters and Adam's moments and step counts) and the
random state of the data streams taken *before* the next chunk was drawn (the data thread
draws one chunk ahead). The file is one ``.npz``: arrays, plus a JSON header that names the
program (its specs' ids and which of the group's fits it is), the versions that decide its
bits and the layout of the nests of arrays. Nothing is unpickled: it is read with
``np.load(path, allow_pickle=False)``. A file that fails any check (unreadable or truncated, another
program, other versions, other shapes) is named on stderr, set aside as ``*.rejected`` and
the program starts fresh.

The runner names the group being trained (`active`); each `engine.fit` inside it takes the
group's next part (`for_fit`), and so does a loop of its own (the grid world's, which saves
its own state through `Checkpoint`); a fit's final checkpoint lets a resumed group skip
training it again. Stopping is cooperative:
`request_stop` (the CLI's SIGINT and SIGTERM handlers, a Dask worker asked to stop) makes
every running fit save at its next chunk boundary and raise `Interrupted`.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 1  # the layout of a checkpoint file; another is rejected
DIRECTORY = ".checkpoints"  # inside the results directory
DEFAULT_EVERY = 300.0  # seconds between periodic checkpoints (--checkpoint-every 5)

_STOP = threading.Event()


class Interrupted(KeyboardInterrupt):
    """A fit stopped at a chunk boundary because a stop was requested (its state saved
    first where checkpoints are on)."""


class Rejected(ValueError):
    """A checkpoint that cannot be trusted; the message says why."""


def request_stop() -> None:
    """Ask every fit in this process to save and stop at its next chunk boundary."""
    _STOP.set()


def stop_requested() -> bool:
    return _STOP.is_set()


def clear_stop() -> None:
    _STOP.clear()


@dataclass(frozen=True)
class Plan:
    """Where a sweep keeps its checkpoints and how often a fit writes one (picklable: it
    travels to worker processes with each group). ``every`` <= 0: no checkpoints."""

    directory: str
    every: float = DEFAULT_EVERY


def digest(array: np.ndarray) -> str:
    """A short hash of an array's shape and bytes (a fit's plan of chunks)."""
    return hashlib.sha256(repr(array.shape).encode() + array.tobytes()).hexdigest()[:20]


def group_key(ids) -> str:
    """The file stem of a group of specs: a hash of their sorted ids."""
    return hashlib.sha256(",".join(sorted(ids)).encode()).hexdigest()[:20]


def files(directory: str | os.PathLike, ids) -> list[Path]:
    """The checkpoints of the group made of the specs ``ids``."""
    return sorted(Path(directory).glob(f"{group_key(ids)}-*.npz"))


def remove(directory: str | os.PathLike, ids) -> None:
    """Delete a group's checkpoints (its records are written)."""
    for path in files(directory, ids):
        path.unlink(missing_ok=True)


@dataclass
class _Group:
    plan: Plan
    ids: list[str]
    parts: Any = field(default_factory=itertools.count)


_ACTIVE: contextvars.ContextVar[_Group | None] = contextvars.ContextVar("checkpoint_group",
                                                                       default=None)


@contextlib.contextmanager
def active(plan: Plan | None, ids):
    """The group of specs ``ids`` trains in this block; its fits checkpoint under ``plan``."""
    token = _ACTIVE.set(_Group(plan, sorted(ids)) if plan is not None else None)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def for_fit() -> Checkpoint | None:
    """The checkpoint of the fit starting now in the active group (None: checkpoints off)."""
    group = _ACTIVE.get()
    if group is None or group.plan.every <= 0:
        return None
    part = next(group.parts)
    directory = Path(group.plan.directory)
    return Checkpoint(directory / f"{group_key(group.ids)}-{part}.npz", group.ids, part,
                      group.plan.every)


def versions(trainer) -> dict[str, str]:
    """What decides a checkpoint's bits besides the code: Python, numpy, the trainer's class
    and its framework's version."""
    kind = type(trainer)
    out = {"python": sys.version.split()[0], "numpy": np.__version__,
           "trainer": f"{kind.__module__}.{kind.__qualname__}"}
    parts = kind.__module__.split(".")  # models.torch.train, models.tf.sequence, ...
    framework = {"torch": "torch", "tf": "tensorflow"}.get(parts[1] if len(parts) > 1 else "")
    if framework in sys.modules:
        out[framework] = str(getattr(sys.modules[framework], "__version__", "?"))
    return out


# ---------------------------------------------------------------- nests of arrays

def pack(tree, arrays: dict[str, np.ndarray]):
    """The JSON layout of a nest of dicts, lists, arrays, numbers and None; the arrays go
    into ``arrays`` under fresh names."""
    if isinstance(tree, dict):
        return {"d": {str(k): pack(v, arrays) for k, v in tree.items()}}
    if isinstance(tree, (list, tuple)):
        return {"l": [pack(v, arrays) for v in tree]}
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return {"v": tree}
    name = f"a{len(arrays)}"
    arrays[name] = np.asarray(tree)
    return {"a": name}


def unpack(layout, arrays) -> Any:
    if "d" in layout:
        return {k: unpack(v, arrays) for k, v in layout["d"].items()}
    if "l" in layout:
        return [unpack(v, arrays) for v in layout["l"]]
    if "v" in layout:
        return layout["v"]
    return arrays[layout["a"]]


def shapes(tree):
    """The nest with each array replaced by its (shape, dtype): what must match to load."""
    if isinstance(tree, dict):
        return {k: shapes(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [shapes(v) for v in tree]
    if isinstance(tree, np.ndarray):
        return (tree.shape, str(tree.dtype))
    return type(tree).__name__


# ---------------------------------------------------------------- the file

class Checkpoint:
    """One fit's checkpoint file: ``due()`` says when the next periodic one is owed,
    ``save(header, tree)`` writes it atomically, ``load(header)`` reads it back when it is
    this program's (else sets it aside, says so, and gives None)."""

    def __init__(self, path: Path, ids: list[str], part: int, every: float):
        self.path, self.ids, self.part, self.every = Path(path), list(ids), part, every
        self.last = time.monotonic()
        self.failed = False  # a write failed (said once)

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every

    def _identity(self, header: dict) -> dict:
        return {"format": FORMAT, "ids": self.ids, "part": self.part, **header}

    def save(self, header: dict, tree) -> None:
        """Write ``tree`` (a nest of arrays) with ``header`` (what identifies the program
        besides its ids: its shape, `versions`) to a temporary file beside the checkpoint,
        then rename it over. A checkpoint that cannot be written (a full disk) is said once
        on stderr and training goes on: the previous one, if any, stays whole."""
        arrays: dict[str, np.ndarray] = {}
        meta = {**self._identity(header), "layout": pack(tree, arrays)}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}-",
                                       suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # as records: workers of a cluster may run as other users
            os.replace(tmp, self.path)
        except BaseException as err:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            if not isinstance(err, OSError):
                raise
            if not self.failed:
                print(f"warning: cannot write checkpoint {self.path}: {err.strerror or err}; "
                      f"training goes on", file=sys.stderr)
            self.failed = True
        self.last = time.monotonic()

    def load(self, header: dict):
        """The saved nest if the file exists and is this program's at these versions; a
        file that is not is set aside (named on stderr) and None is returned."""
        if not self.path.exists():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            meta = json.loads(arrays.pop("meta").tobytes().decode())
            expected = self._identity(header)
            for key, value in expected.items():
                if meta.get(key) != json.loads(json.dumps(value)):
                    raise Rejected(f"its {key} is {_short(meta.get(key))}, this program's "
                                   f"{_short(value)}")
            return unpack(meta["layout"], arrays)
        except Exception as err:  # noqa: BLE001 - any unreadable file is set aside, never trusted
            self.reject(err if isinstance(err, Rejected) else
                        f"unreadable ({type(err).__name__}: {err})")
            return None

    def reject(self, why) -> None:
        """Set the file aside as ``*.rejected`` and say so; the program starts fresh."""
        aside = self.path.with_suffix(".rejected")
        with contextlib.suppress(OSError):
            os.replace(self.path, aside)
        print(f"warning: checkpoint {self.path} set aside as {aside.name}: {why}; "
              f"the program starts from step 0", file=sys.stderr)


def _short(value, limit: int = 80) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
