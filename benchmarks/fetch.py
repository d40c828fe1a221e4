"""``python -m benchmarks fetch mnist``: MNIST's four IDX files, downloaded once and checked.

With pooch: each file's MD5 is pinned here (the checksums torchvision's ``MNIST`` class
publishes), the mirrors are tried in turn, and a file is downloaded to a temporary name
in the cache and renamed only once its checksum matches, so a wrong or cut transfer
leaves nothing behind and the next call starts clean. Files already in place with the
right checksum are not downloaded again. The default place is `tasks.digits.FETCH_DIR`
(the user's cache), which the digit tasks search; the files are checked as MNIST
(magic numbers, sizes, counts) before the command says they are ready.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from tasks import digits

FILES = {  # name -> MD5, as torchvision.datasets.MNIST.resources gives them
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MIRRORS = (  # torchvision's, then TensorFlow's, then the original site
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
TIMEOUT = 30  # seconds without data before a mirror is given up
DEADLINE = 300.0  # seconds one file may take from one mirror, however the data trickles
DATASETS = ("mnist",)


class FetchError(RuntimeError):
    """A download that could not be completed; one line saying why and what to do."""


class _Deadline(Exception):
    """One file took longer than its deadline from one mirror."""


class _Signal(BaseException):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C, so the temporary file is removed."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _deadline(seconds: float | None):
    """Raise _Deadline in this (main) thread after ``seconds``: the timeout of requests
    bounds each wait for data, not a transfer that sends a byte now and then. Returns the
    function that cancels it; in another thread, where no alarm can be set, a no-op."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        return lambda: None

    def expire(signum, frame):
        raise _Deadline()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)

    def cancel():
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return cancel


def _by_hand(directory: Path) -> str:
    names = ", ".join(FILES)
    return (f"place the four files by hand ({names}, from any of {', '.join(MIRRORS)}) "
            f"in {directory}, or anywhere and pass --mnist-dir DIR (or set "
            f"${digits.ENV})")


def mnist(directory: str | os.PathLike | None = None, mirrors=MIRRORS,
          files: dict[str, str] | None = None, timeout: float = TIMEOUT,
          deadline: float | None = DEADLINE) -> Path:
    """Download (or find already there) MNIST's files into ``directory``; return it.

    ``timeout``: seconds without data; ``deadline``: seconds for one file from one mirror
    (in the main thread). Raises FetchError naming the file, the mirrors tried and the last
    error."""
    import pooch
    import requests

    directory = Path(directory).expanduser() if directory else digits.FETCH_DIR
    files = FILES if files is None else files
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FetchError(f"cannot create {directory}: {err.strerror or err}") from None
    pooch.get_logger().setLevel("WARNING")  # one line per file is ours to print
    downloader = pooch.HTTPDownloader(progressbar=False,
                                      timeout=min(timeout, deadline or timeout))
    offline = True
    for name, md5 in files.items():
        errors = []
        for mirror in mirrors:
            cancel = _deadline(deadline)
            try:
                present = (directory / name).is_file()
                pooch.retrieve(mirror.rstrip("/") + "/" + name, known_hash=f"md5:{md5}",
                               fname=name, path=directory, downloader=downloader)
                offline = False
                if not present:
                    print(f"{name}: downloaded from {mirror}, MD5 checked")
                break
            except ValueError as err:  # pooch: the checksum does not match (file removed)
                offline = False
                errors.append(f"{mirror}: wrong checksum ({str(err).splitlines()[0][:120]})")
            except requests.exceptions.ConnectionError as err:
                errors.append(f"{mirror}: {type(err).__name__}")
            except (requests.exceptions.RequestException, OSError) as err:
                offline = False
                errors.append(f"{mirror}: {type(err).__name__}: {str(err)[:120]}")
            except _Deadline:
                offline = False
                errors.append(f"{mirror}: not done within {deadline:g} s (--timeout)")
            finally:
                cancel()
        else:
            if offline:
                raise FetchError(f"cannot download MNIST: no mirror reachable (offline?); "
                                 f"{_by_hand(directory)}")
            raise FetchError(f"cannot download {name}: {'; '.join(errors)}; nothing of it "
                             f"was kept; {_by_hand(directory)}")
    return directory


def main(dataset: str, directory: str | None = None, mirrors=None,
         deadline: float = DEADLINE) -> int:
    """The ``fetch`` command: 0 when the files are in place and read as MNIST, 1 when the
    download failed (one line: why, and how to place the files by hand); interrupted
    (Ctrl-C, SIGTERM, SIGHUP), one line and 128 + the signal's number, the file being
    downloaded removed."""
    def stop(signum, frame):
        raise _Signal(signum)

    caught = (signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, stop) for sig in caught}
    try:
        where = mnist(directory, mirrors or MIRRORS, deadline=deadline)
        data = digits.load_mnist(where)
    except (FetchError, digits.DigitsError) as err:
        print(f"python -m benchmarks fetch: {err}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, _Signal) as err:
        signum = getattr(err, "signum", signal.SIGINT)
        print(f"python -m benchmarks fetch: interrupted ({signal.Signals(signum).name}); "
              f"the file being downloaded was removed, those complete are kept",
              file=sys.stderr)
        return 128 + signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(data.text())
    if directory and Path(directory).expanduser().resolve() != digits.FETCH_DIR.resolve():
        print(f"the digit tasks read it with --mnist-dir {where} (or ${digits.ENV}={where})")
    else:
        print("the digit tasks (mnist_counting, mnist_addition) use it from now on")
    return 0
