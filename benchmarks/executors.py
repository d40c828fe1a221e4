"""Where groups run: in this process, in a local pool of processes, or on a Dask cluster.

Every executor maps one picklable function over work items (groups, `runner.Work`) and
yields ``(item, result)`` as each finishes; only the calling (CLI) process writes records.
The CLI calls ``map`` once per stage on the same executor, so stages share a pool.
"""
from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from concurrent.futures.process import BrokenProcessPool
from urllib.parse import urlsplit

from models import checkpoint

EXECUTORS = ("local", "processes", "dask")
CONNECT_TIMEOUT = 5  # seconds for a --scheduler to connect and send its handshake
MAX_HANDSHAKE = 1 << 20  # bytes: Dask's handshake is a small dict
STOP_WAIT = 120  # seconds Dask workers get to save their checkpoints after Ctrl-C
# One thread per worker process (what Dask's nanny sets too): N workers share N cores
# instead of each spawning a thread pool over all of them.
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                 "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}


class ExecutorError(ValueError):
    """An executor cannot start or lost its workers; one line naming the bad value."""


class Local:
    """Sequential, in this process; the caller may pass live progress into ``fn``."""

    in_process = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn: Callable, items: Iterable) -> Iterator:
        for item in items:
            yield item, fn(item)


def _worker_init() -> None:
    """Pool initializer, run before the worker imports a framework: one thread, and SIGINT
    or SIGTERM ask its program to save a checkpoint and stop at its next chunk of steps (a
    second one stops it at once)."""
    os.environ.update(SINGLE_THREAD)

    def handle(signum, frame):
        if checkpoint.stop_requested():
            raise KeyboardInterrupt
        checkpoint.request_stop()

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, handle)


class Processes(Local):
    """A local pool of spawned worker processes (spawn: no forked framework state)."""

    in_process = False

    def __init__(self, workers: int = 2):
        self.workers = workers
        self.pool: futures.ProcessPoolExecutor | None = None

    def __enter__(self):
        self.pool = futures.ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init)
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is not None:  # error or Ctrl-C: stop the workers now, not after their group
            for proc in list((self.pool._processes or {}).values()):
                proc.terminate()  # SIGTERM: each saves its program's checkpoint, then stops
        # after Ctrl-C or SIGTERM, wait for those checkpoints (a second signal cuts it short)
        self.pool.shutdown(wait=exc_type is None or issubclass(exc_type, KeyboardInterrupt),
                           cancel_futures=True)
        return False

    def map(self, fn: Callable, items: Iterable) -> Iterator:
        pending = {self.pool.submit(fn, item): item for item in items}
        try:
            for done in futures.as_completed(pending):
                yield pending[done], done.result()
        except BrokenProcessPool:
            raise ExecutorError("a worker process of executor 'processes' died; run the "
                                "same command again to resume") from None


class Dask(Local):
    """dask.distributed: joins ``scheduler`` or starts a LocalCluster on 127.0.0.1 only."""

    in_process = False

    def __init__(self, workers: int = 2, scheduler: str | None = None):
        self.workers, self.scheduler = workers, scheduler
        self.client = self.cluster = None
        self.pending: dict = {}

    def __enter__(self):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ExecutorError("executor 'dask' needs dask.distributed: pip install "
                                "'dask[distributed]' (the 'dask' extra)") from None
        if self.scheduler:
            if self.scheduler.startswith("tcp://"):
                handshake(self.scheduler, CONNECT_TIMEOUT)
            try:
                self.client = Client(self.scheduler, timeout=CONNECT_TIMEOUT)
            except (OSError, ValueError, TypeError) as err:
                raise ExecutorError(f"cannot reach scheduler {self.scheduler!r}: "
                                    f"{str(err).splitlines()[0] if str(err) else err!r}") from None
        else:
            self.cluster = LocalCluster(host="127.0.0.1", n_workers=self.workers,
                                        threads_per_worker=1, processes=True,
                                        dashboard_address=None)
            self.client = Client(self.cluster)
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt) and self.pending:
            # Ctrl-C or SIGTERM: every worker saves its program's checkpoint and stops at its
            # next chunk of steps; wait for them, then let the workers train again later
            with contextlib.suppress(Exception):
                from dask.distributed import wait

                self.client.run(checkpoint.request_stop)
                wait(list(self.pending), timeout=STOP_WAIT)
                self.client.run(checkpoint.clear_stop)
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        return False

    def map(self, fn: Callable, items: Iterable) -> Iterator:
        from dask.distributed import KilledWorker, as_completed

        # A task lost with its worker is recomputed by the scheduler under the same key;
        # its future still completes once (and the CLI drops any record id seen twice).
        pending = self.pending = {self.client.submit(fn, item, pure=False): item
                                  for item in items}
        try:
            for done in as_completed(pending):
                yield pending[done], done.result()
        except (KilledWorker, futures.CancelledError, OSError) as err:
            raise ExecutorError(f"dask lost a group ({type(err).__name__}: "
                                f"{str(err).splitlines()[0] if str(err) else ''}); "
                                "run the same command again to resume") from None


def _receive(sock: socket.socket, n: int, deadline: float) -> bytes:
    data = b""
    while len(data) < n:
        sock.settimeout(max(deadline - time.monotonic(), 1e-3))
        chunk = sock.recv(min(n - len(data), 1 << 16))
        if not chunk:
            raise ConnectionResetError(errno.ECONNRESET, "the peer closed the connection")
        data += chunk
    return data


def handshake(address: str, timeout: float) -> None:
    """Check that ``tcp://HOST:PORT`` answers as a Dask scheduler within ``timeout`` seconds,
    connection and first reply together, before Dask's client is let near it.

    A Dask listener sends its handshake first: 8 bytes giving the message's length, then
    frames whose own lengths head them. Dask's client waits for it with no bound and
    allocates what the lengths say, so a live port that is not Dask (an HTTP server: no
    reply; any peer sending bytes: absurd lengths) would hang or exhaust memory there."""
    from distributed.protocol.utils import unpack_frames

    url = urlsplit(address)
    try:
        host, port = url.hostname, url.port
    except ValueError:
        host = port = None
    if not host or port is None:
        raise ExecutorError(f"bad --scheduler {address!r}; expected tcp://HOST:PORT")
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            (size,) = struct.unpack("=Q", _receive(sock, 8, deadline))
            if not 0 < size <= MAX_HANDSHAKE:
                raise ExecutorError(f"scheduler {address!r} is not a Dask scheduler: its first "
                                    f"reply announces {size:,} bytes, not a handshake")
            _, buffers = unpack_frames(_receive(sock, size, deadline), partial=True)
            if sum(buffers) > MAX_HANDSHAKE:
                raise ExecutorError(f"scheduler {address!r} is not a Dask scheduler: its "
                                    f"handshake announces {sum(buffers):,} bytes")
    except ExecutorError:
        raise
    except TimeoutError:
        raise ExecutorError(f"scheduler {address!r} did not answer as a Dask scheduler within "
                            f"{timeout:g} s (connection and handshake)") from None
    except (struct.error, ValueError, IndexError):
        raise ExecutorError(f"scheduler {address!r} is not a Dask scheduler: its first reply "
                            f"is not a Dask handshake") from None
    except OSError as err:
        raise ExecutorError(f"cannot reach scheduler {address!r}: "
                            f"{err.strerror or err}") from None


def get(name: str, workers: int = 2, scheduler: str | None = None) -> Local:
    """An executor, not yet started: use it as a context manager, then ``map``."""
    if name not in EXECUTORS:
        raise ExecutorError(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}")
    most = max(64, 4 * (os.cpu_count() or 1))
    if not 1 <= workers <= most:
        raise ExecutorError(f"bad --workers {workers}; expected a positive integer up to {most} "
                            f"(4 per core of this machine, at least 64)")
    if scheduler is not None and name != "dask":
        raise ExecutorError(f"--scheduler {scheduler!r} needs --executor dask (got {name!r})")
    if scheduler is not None and not scheduler.startswith(("tcp://", "tls://")):
        raise ExecutorError(f"bad --scheduler {scheduler!r}; expected tcp://HOST:PORT")
    if name == "processes":
        return Processes(workers)
    if name == "dask":
        return Dask(workers, scheduler)
    return Local()
