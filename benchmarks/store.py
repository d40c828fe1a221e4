"""The results directory: one JSON record per finished run, written atomically.

``results/<name>/<spec id>.json``; a record is written to a temporary file in the
same directory and renamed into place, so a crash or Ctrl-C never leaves a
half-written record. Aggregates (CSV/Parquet) are derived from these files.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from benchmarks import schema
from benchmarks.records import FINAL

_ID = re.compile(r"^[0-9a-f]{20}$")


class StoreError(OSError):
    """The results directory cannot be used; the message names it."""


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
            if isinstance(err, OSError):  # disk full, read-only, ...: name the directory
                raise StoreError(f"cannot write records to {str(self.root)!r}: "
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
