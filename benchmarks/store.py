"""The results directory: one JSON record per finished run, written atomically.

``results/<name>/<spec id>.json``; a record is written to a temporary file in the
same directory and renamed into place, so a crash or Ctrl-C never leaves a
half-written record. Aggregates (CSV/Parquet) are derived from these files.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks import schema
from benchmarks.records import FINAL

_ID = re.compile(r"^[0-9a-f]{20}$")


class StoreError(OSError):
    """The results directory cannot be used; the message names it."""


class WriteError(OSError):
    """An output file could not be written (disk full, read-only, ...): exit 1, the message
    names the file; whatever was there before is intact."""


class OutputError(ValueError):
    """An output path that would overwrite an input or a file this command did not write:
    refused before any work, exit 2."""


def atomic_write(path: str | os.PathLike, write: Callable[[str], None],
                 mode: int = 0o644) -> Path:
    """Write ``path`` whole or not at all: ``write(tmp)`` fills a temporary file in the same
    directory, which is synced and renamed into place. Any failure removes the temporary
    file and leaves an older ``path`` untouched; an OSError becomes WriteError naming
    ``path``."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
        os.close(fd)
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # mkstemp makes 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise WriteError(f"cannot write {str(path)!r}: {err.strerror or err}") from None
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """`atomic_write` of UTF-8 text."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
    return atomic_write(path, write)


def check_output(output: str | os.PathLike, inputs, title: str,
                 beside: tuple[str, ...] = ()) -> list[Path]:
    """Refuse (OutputError) an output that would destroy something: ``output`` or a file
    ``beside`` it that is an input, lies inside an input directory, or exists without
    being a page this command wrote (its ``<title>`` starts with ``title``). A file beside
    may be replaced only together with such a page. Returns the paths to be written."""
    out = Path(output)
    targets = [out, *(out.parent / name for name in beside)]
    if out.is_dir():
        raise OutputError(f"-o {str(output)!r} is a directory; name the HTML file to write, "
                          f"e.g. {str(out / 'report.html')!r}")
    ours = out.is_file() and _page_of(out, title)
    for target in targets:
        resolved = target.resolve()
        for given in inputs:
            source = Path(given).resolve()
            if resolved == source or (source.is_dir() and resolved.is_relative_to(source)):
                what = "is" if resolved == source else "lies inside"
                raise OutputError(f"-o {str(output)!r}: {str(target)!r} {what} the input "
                                  f"{str(given)!r}; write the output elsewhere")
    for target in targets:
        if target.exists() and not ours:
            raise OutputError(f"-o {str(output)!r}: {str(target)!r} exists and is not "
                              f"{'an' if title[0] in 'AEIOU' else 'a'} {title} page this "
                              f"command wrote; remove it or write elsewhere")
    return targets


def _page_of(path: Path, title: str) -> bool:
    """Whether an existing file is an HTML page with this title (one we wrote before)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096).decode("utf-8", "replace")
    except OSError:
        return False
    return f"<title>{title}" in head


def lock(root: str | os.PathLike):
    """Hold ``root/.lock`` for as long as the returned file stays open; StoreError when
    another process holds it. The kernel drops the lock when its holder exits, however it
    exits, so a lock left by a dead process never blocks."""
    path = Path(root) / ".lock"
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        fh.seek(0)
        holder = fh.read(40).strip() or "another process"
        fh.close()
        if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise StoreError(f"results directory {str(root)!r} is in use by a run in progress "
                             f"(pid {holder}); wait for it to end, or give another "
                             f"--results") from None
        raise StoreError(f"cannot lock {str(path)!r}: {err.strerror or err}") from None
    fh.truncate(0)
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


class Store:
    def __init__(self, root: str | os.PathLike, create: bool = True):
        self.root = Path(root)
        self.corrupt: list[Path] = []
        self.problems: dict[Path, str] = {}  # corrupt file -> why (benchmarks.schema)
        if create:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                probe = tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-", delete=True)
                probe.close()
            except OSError as err:
                raise StoreError(f"results directory {str(self.root)!r} is not writable: "
                                 f"{err.strerror or err}") from None
        elif not self.root.is_dir():
            raise StoreError(f"results directory {str(self.root)!r} does not exist")

    def path(self, spec_id: str) -> Path:
        if not _ID.match(spec_id):  # ids are hex digests: no path can escape the directory
            raise ValueError(f"bad record id {spec_id!r}")
        return self.root / f"{spec_id}.json"

    def read(self, spec_id: str) -> dict | None:
        path = self.path(spec_id)
        if not path.exists():
            return None
        return self._load(path)

    def is_final(self, spec_id: str) -> bool:
        record = self.read(spec_id)
        return record is not None and record.get("status") in FINAL

    def write(self, record: dict) -> Path:
        """Atomic and idempotent: the same id written twice leaves one complete file."""
        path = self.path(record["id"])
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{record['id']}-", suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                json.dump(record, fh, indent=1, allow_nan=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; records are meant to be shared
            os.replace(tmp, path)
        except BaseException as err:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            if isinstance(err, OSError):  # disk full, read-only, ...: name the file
                raise WriteError(f"cannot write record {str(path)!r}: "
                                 f"{err.strerror or err}; earlier records are intact") from None
            raise
        return path

    def _load(self, path: Path) -> dict | None:
        """The record, checked (benchmarks.schema); None, listed with its reason, if bad."""
        try:
            return schema.load(path, self.root)
        except schema.RecordError as err:
            self.corrupt.append(path)
            self.problems[path] = str(err)
            return None

    def records(self) -> Iterator[dict]:
        """Every readable record; unreadable ones are listed in ``self.corrupt``."""
        for path in sorted(self.root.glob("*.json")):
            if _ID.match(path.stem):
                record = self._load(path)
                if record is not None:
                    yield record
