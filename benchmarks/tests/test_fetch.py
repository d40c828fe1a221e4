"""`fetch mnist` against a local HTTP server on 127.0.0.1 serving files made here: good
files, a wrong checksum, a transfer cut half-way, a dead mirror, no network at all."""
from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import threading

import pytest

import tasks
from benchmarks import cli, fetch
from models import registry
from tasks import digits
from tasks.tests.test_digits import fake_mnist, idx_bytes

pytest.importorskip("pooch")
NAMES = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
         "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}


def mnist_files() -> dict[str, bytes]:
    """The four gz IDX files of a small fake MNIST (12 train, 5 test images of 28x28)."""
    return {NAMES[part]: gzip.compress(idx_bytes(a)) for part, a in fake_mnist().items()}


class Server:
    """Serves ``files`` over HTTP; a name in ``cut`` gets its full Content-Length but only
    half its bytes before the connection closes. ``requests`` counts GETs per file."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.cut, self.requests = dict(files), set(), {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                name = self.path.rsplit("/", 1)[-1]
                server.requests[name] = server.requests.get(name, 0) + 1
                data = server.files.get(name)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if name in server.cut:
                    self.wfile.write(data[:len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mnist/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served():
    files = mnist_files()
    server = Server(files)
    yield server, {name: hashlib.md5(data).hexdigest() for name, data in files.items()}
    server.close()


@pytest.fixture
def dead_url():
    """A port that refuses connections: what a machine without network sees."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/"


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_good_files_are_fetched_checked_and_not_fetched_twice(tmp_path, served):
    server, md5 = served
    where = fetch.mnist(tmp_path / "cache", [server.url], md5)
    assert leftovers(where) == sorted(md5)
    data = digits.load_mnist(where)
    assert (data.source, len(data.train_labels), len(data.test_labels)) == ("mnist", 12, 5)
    fetch.mnist(tmp_path / "cache", [server.url], md5)
    assert all(count == 1 for count in server.requests.values())  # already in place


def test_wrong_checksum_is_refused_and_nothing_cached(tmp_path, served):
    server, md5 = served
    bad = dict(md5, **{NAMES["train_labels"]: "0" * 32})
    with pytest.raises(fetch.FetchError, match="train-labels-idx1-ubyte.gz.*wrong checksum"):
        fetch.mnist(tmp_path / "cache", [server.url], bad)
    assert NAMES["train_labels"] not in leftovers(tmp_path / "cache")
    assert not [n for n in leftovers(tmp_path / "cache") if n not in md5]  # no temp file


def test_transfer_cut_half_way_is_refused_and_the_next_call_starts_clean(tmp_path, served):
    server, md5 = served
    server.cut.add(NAMES["test_images"])
    with pytest.raises(fetch.FetchError, match="t10k-images-idx3-ubyte.gz"):
        fetch.mnist(tmp_path / "cache", [server.url], md5)
    assert NAMES["test_images"] not in leftovers(tmp_path / "cache")
    assert not [n for n in leftovers(tmp_path / "cache") if n not in md5]
    server.cut.clear()
    where = fetch.mnist(tmp_path / "cache", [server.url], md5)
    assert leftovers(where) == sorted(md5)
    assert digits.load_mnist(where).source == "mnist"


def test_mirrors_are_tried_in_turn(tmp_path, served, dead_url):
    server, md5 = served
    missing = Server({})  # answers 404 for every file
    try:
        where = fetch.mnist(tmp_path / "cache", [dead_url, missing.url, server.url], md5)
    finally:
        missing.close()
    assert leftovers(where) == sorted(md5)


def test_offline_one_line_exit_1_says_how_to_place_the_files(tmp_path, capsys, dead_url):
    code = cli.main(["fetch", "mnist", "--dir", str(tmp_path / "cache"), "--mirror", dead_url])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert "offline" in err[0] and "by hand" in err[0] and "--mnist-dir" in err[0]
    assert leftovers(tmp_path / "cache") == []


def test_fetch_command_then_records_say_mnist_and_how_many_images(tmp_path, capsys, served,
                                                                   monkeypatch):
    server, md5 = served
    monkeypatch.setattr(fetch, "FILES", md5)
    monkeypatch.setattr(digits, "FETCH_DIR", tmp_path / "cache")
    monkeypatch.delenv(digits.ENV, raising=False)
    assert cli.main(["fetch", "mnist", "--mirror", server.url]) == 0
    assert "MNIST (28x28)" in capsys.readouterr().out
    assert digits.find_mnist() == tmp_path / "cache"  # the digit tasks search it
    if registry.framework_missing("torch"):
        pytest.skip("torch is not installed")
    results = tmp_path / "r"
    code = cli.main(["run", "--tasks", "mnist_counting", "--units", "lstm", "--frameworks",
                     "torch", "--budget", "smoke", "--steps", "2", "--seeds", "0", "--quiet",
                     "--param", "test_lengths=20", "--param", "test_sequences=10",
                     "--results", str(results)])
    assert code == 0, capsys.readouterr().err
    (path,) = results.glob("*.json")
    metrics = json.loads(path.read_text())["metrics"]
    assert (metrics["digits_source"], metrics["digits_train"], metrics["digits_test"]) == (
        "mnist", 12, 5)


def test_quick_budget_reads_mnist_downsampled_to_8x8(tmp_path, served, monkeypatch):
    """With MNIST on the machine the quick matrix reads it at 8x8 (the 28x28 CNN would take
    the quick command past 15 minutes); without MNIST, and at other budgets, nothing changes."""
    from benchmarks import suite

    server, md5 = served
    monkeypatch.setattr(digits, "FETCH_DIR", tmp_path / "cache")
    monkeypatch.setattr(digits, "KERAS_CACHE", tmp_path / "keras" / "mnist.npz")
    monkeypatch.setattr(digits, "TORCHVISION_ROOTS", (tmp_path / "tv",))
    monkeypatch.delenv(digits.ENV, raising=False)

    def sides(budget):
        specs = suite.expand(["mnist_addition"], None, ["torch"], [0], suite.BUDGETS[budget])
        return {s.params.get("side", "auto") for s in specs}

    assert sides("quick") == {"auto"}  # no MNIST: scikit-learn's 8x8 digits as before
    fetch.mnist(tmp_path / "cache", [server.url], md5)
    assert sides("quick") == {8} and sides("smoke") == {"auto"}
    task = tasks.get("mnist_addition")(side=8)
    described = task.digits.describe()
    assert (described["digits_source"], described["digits_side"], described["digits_train"],
            described["digits_downsampled_from"]) == ("mnist", 8, 12, 28)
    assert "downsampled from 28x28" in task.digits.text()
    with pytest.raises(tasks.base.TaskError, match="side=28 needs MNIST"):
        tasks.get("mnist_addition")(side=28, source="sklearn")
