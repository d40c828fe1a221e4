"""Exit status a script can trust: 0 ok/diverged, 1 a run ended in error, 2 bad input.

Every case of issue 20's list: the status, one line naming the bad value or file, and
nothing written for bad input; `report` over every malformed record; the Dask handshake.
"""
import json
import os
import socket
import threading
import time

import pytest

from benchmarks import cli, executors
from models import registry
from reports.tests.conftest import record, write
from tasks.static_arithmetic import StaticArithmetic
from tasks.tests.test_digits import fake_mnist, write_idx

FRAMEWORK = next((f for f in registry.FRAMEWORKS if not registry.framework_missing(f)), None)
needs_framework = pytest.mark.skipif(FRAMEWORK is None, reason="neither torch nor tensorflow")
TINY = ["--tasks", "static_arithmetic", "--units", "nau", "--frameworks", str(FRAMEWORK),
        "--ops", "add", "--seeds", "0-1", "--budget", "smoke", "--steps", "20", "--quiet",
        "--param", "input_size=10", "--param", "eval_size=100"]


def run(capsys, *args):
    """cli.main in this process: (exit status, stdout, stderr lines)."""
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


@pytest.fixture
def truncated_mnist(tmp_path):
    paths = write_idx(tmp_path / "mnist", fake_mnist(), gz=True)
    data = paths["train_images"].read_bytes()
    paths["train_images"].write_bytes(data[:len(data) // 2])
    return tmp_path / "mnist", paths["train_images"].name


BAD_RUN = [  # (arguments, what the one line must name)
    (["--tasks", "static_arithmetic", "--param", "interpolation_range=1e30,1e39"],
     "interpolation_range"),
    (["--tasks", "static_arithmetic", "--param", "interpolation_range=1,1.00000001"],
     "equal in float32"),
    (["--tasks", "static_arithmetic", "--param", "input_size=100000"], "input_size=100000"),
    (["--tasks", "recurrent_arithmetic", "--param", "test_lengths=1e8"], "test_lengths"),
    (["--tasks", "recurrent_arithmetic", "--param", "test_lengths=100000"], "test_lengths"),
    (["--tasks", "mnist_counting", "--param", "test_lengths=100000000"], "test_lengths"),
    (["--tasks", "grid_world", "--param", "eval_episodes=1e8"], "eval_episodes"),
    (["--tasks", "grid_world", "--param", "eval_episodes=100000000"], "eval_episodes"),
    (["--tasks", "text_to_number", "--param", "hidden_size=1000000"], "hidden_size"),
    (["--tasks", "mnist_addition", "--param", "input_size=0"], "input_size"),
    (["--tasks", "static_arithmetic", "--param", "op=mul", "--ops", "add"], "op=mul"),
    (["--tasks", "static_arithmetic", "--seeds", ""], "''"),
    (["--tasks", "static_arithmetic", "--seeds", "0-99999999"], "0-99999999"),
    (["--tasks", "static_arithmetic", "--seeds", "0-9999999"], "0-9999999"),
    (["--tasks", "mnist_addition", "--param", "success_error=inf"], "success_error"),
    (["--tasks", "static_arithmetic", "--steps", "100000000000000000000"], "--steps"),
    (["--tasks", "static_arithmetic", "--executor", "processes", "--workers", "100000"],
     "--workers 100000"),
]


@pytest.mark.parametrize("args,named", BAD_RUN, ids=[" ".join(a[1:]) for a, _ in BAD_RUN])
def test_bad_input_exit_2_one_line_nothing_written(tmp_path, capsys, args, named):
    results = tmp_path / "r"
    start = time.perf_counter()
    code, _, err = run(capsys, "run", *args, "--frameworks", "torch", "--budget", "smoke",
                       "--results", str(results))
    assert code == 2 and len(err) == 1 and named in err[0], err
    assert not results.exists()
    assert time.perf_counter() - start < 20  # refused before any work, not after


def test_truncated_mnist_file_exit_2_names_it(tmp_path, capsys, truncated_mnist, monkeypatch):
    directory, name = truncated_mnist
    # --mnist-dir exports $ARITHBENCH_MNIST in this process: undone after the test, so the
    # truncated files do not reach later tests' subprocesses
    monkeypatch.setenv("ARITHBENCH_MNIST", str(directory))
    monkeypatch.delenv("ARITHBENCH_MNIST")
    code, _, err = run(capsys, "run", "--tasks", "mnist_counting", "--units", "lstm",
                       "--frameworks", "torch", "--budget", "smoke", "--mnist-dir",
                       str(directory), "--results", str(tmp_path / "r"))
    assert code == 2 and len(err) == 1 and name in err[0], err
    assert not (tmp_path / "r").exists()


def test_device_without_gpu_exit_2(tmp_path, capsys, monkeypatch):
    """Asked of the framework; here torch is told it sees no GPU."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run(capsys, "run", *TINY[:4], "--frameworks", "torch", "--device", "cuda",
                       "--results", str(tmp_path / "r"))
    assert code == 2 and len(err) == 1 and "torch sees 0 GPU" in err[0], err
    assert not (tmp_path / "r").exists()
    code, _, err = run(capsys, "throughput", "--framework", "torch", "--device", "cuda:0",
                       "--steps", "10", "--seeds", "2")
    assert code == 2 and len(err) == 1 and "--device cuda:0" in err[0], err
    # gpu is read as cuda (torch has no device "gpu"), refused the same way, not trained
    code, _, err = run(capsys, "run", *TINY[:4], "--frameworks", "torch", "--device", "gpu:1",
                       "--results", str(tmp_path / "r"))
    assert code == 2 and len(err) == 1 and "--device cuda:1: torch sees 0 GPU" in err[0], err
    if torch.version.cuda is None:  # this machine's CPU build: the message says what to do
        assert "CPU build" in err[0], err


def test_report_output_naming_a_directory_exit_2(tmp_path, capsys):
    results = write([record(seed=0)], tmp_path / "results")
    code, _, err = run(capsys, "report", str(results), "-o", str(tmp_path))
    assert code == 2 and len(err) == 1 and "is a directory" in err[0]
    assert not (tmp_path / "results.csv").exists()


@needs_framework
def test_run_error_exit_1_lists_runs_and_reasons(tmp_path, capsys, monkeypatch):
    def boom(self, seed):
        raise ArithmeticError("metrics exploded")

    monkeypatch.setattr(StaticArithmetic, "metrics", boom)
    code, _, err = run(capsys, "run", *TINY, "--results", str(tmp_path / "r"))
    assert code == 1
    listed = [line for line in err if "metrics exploded" in line and "seed" in line]
    assert "2 run(s) ended in error:" in err and len(listed) >= 2, err
    assert len(list((tmp_path / "r").glob("*.json"))) == 2  # the error records are kept
    code, _, err = run(capsys, "report", str(tmp_path / "r"), "-o", str(tmp_path / "x.html"))
    assert code == 1 and "2 run(s) ended in error:" in err


@needs_framework
def test_throughput_run_ending_in_error_exit_1_one_line(capsys, monkeypatch):
    def boom(self, seed):
        raise ArithmeticError("metrics exploded")

    monkeypatch.setattr(StaticArithmetic, "metrics", boom)
    code, out, err = run(capsys, "throughput", "--framework", str(FRAMEWORK), "--steps", "20",
                         "--seeds", "2", "--units", "nau")
    assert code == 1 and len(err) == 1 and "metrics exploded" in err[0], err
    assert "seed_steps_per_s=" not in out


@needs_framework
def test_wide_float32_range_trains_without_error(tmp_path, capsys):
    """An extrapolation range far below a wide interpolation range (the default [2, 6]
    under 1e15..1e17, whose targets still square within float32) trains: the magnitude
    curve once ended such a run in error."""
    code, _, err = run(capsys, "run", *TINY, "--seeds", "0", "--param",
                       "interpolation_range=1e15,1e17", "--results", str(tmp_path / "r"))
    assert code == 0, err
    (path,) = (tmp_path / "r").glob("*.json")
    assert json.loads(path.read_text())["status"] in ("ok", "diverged")


# ---------------------------------------------------------------- records checked when read
def malformed() -> dict[str, dict | str | bytes]:
    """File stem -> content: each valid JSON with a status, but wrong in one way (or not
    JSON at all). The stems are made ids so that only the content is at fault."""
    good = record(seed=50)

    def changed(n, **fields):
        rec = record(seed=n)
        rec.update(fields)
        return rec

    def metric(n, **m):
        rec = record(seed=n)
        rec["metrics"] = {**rec["metrics"], **m}
        return rec

    cases = {
        "task_params a string": changed(1, task_params="op=add"),
        "curve a string": changed(2, curve="0,1,2"),
        "success yes": metric(3, success="yes"),
        "metric a dict": metric(4, interpolation_mse={"mean": 1.0}),
        "400-digit integer": metric(5, selected_step=10 ** 400),
        "bare status": {"status": "ok"},
        "seed a string": changed(6, seed="6"),
        "unknown status": changed(7, status="great"),
        "curve lengths": changed(8, curve={"step": [0, 1], "interpolation": [1.0]}),
        "id not its spec": {**record(seed=9), "unit": "nalu"},
        "not json": b"\x00\xff not json",
        "truncated": json.dumps(good)[:100],
        "a list": "[1, 2, 3]",
        "deep nesting": "[" * 100_000 + "]" * 100_000,
        "nan lr": changed(10, lr=float("nan")),
    }
    return cases


def seed_directory(directory, outside):
    """The malformed records, 3 good ones, and a symlink to a good record outside."""
    good = [record(seed=s) for s in (20, 21, 22)]
    write(good, directory)
    names = {}
    for i, (case, content) in enumerate(malformed().items()):
        stem = f"{i:020x}"
        if isinstance(content, dict):
            stem = content.get("id", stem)
            content = json.dumps(content, allow_nan=True)
        path = directory / f"{stem}.json"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        names[case] = path.name
    elsewhere = write([record(seed=30)], outside)
    target = next(elsewhere.glob("*.json"))
    (directory / target.name).symlink_to(target)
    names["symlink out of the directory"] = target.name
    return good, names


def test_report_over_every_malformed_record_names_each_and_exits_1(tmp_path, capsys):
    results = tmp_path / "results"
    good, names = seed_directory(results, tmp_path / "elsewhere")
    out = tmp_path / "out" / "report.html"
    code, stdout, err = run(capsys, "report", str(results), "-o", str(out))
    assert code == 1 and "report written" in stdout
    left_out = [line for line in err if line.startswith("left out:")]
    assert len(left_out) == len(names), err
    for case, name in names.items():
        assert any(name in line for line in left_out), (case, err)
    assert all("Traceback" not in line for line in err)
    html = out.read_text()
    assert all(name in html for name in names.values())
    for aggregate in ("results.csv", "results.parquet"):
        assert (out.parent / aggregate).exists()
    import pandas as pd

    table = pd.read_parquet(out.parent / "results.parquet")
    assert sorted(table["id"]) == sorted(r["id"] for r in good)


def test_reasons_say_what_is_wrong(tmp_path, capsys):
    results = tmp_path / "results"
    _, names = seed_directory(results, tmp_path / "elsewhere")
    run(capsys, "report", str(results), "-o", str(tmp_path / "r.html"))
    from benchmarks.store import Store

    store = Store(results, create=False)
    list(store.records())
    why = {p.name: reason for p, reason in store.problems.items()}
    expect = {"task_params a string": "task_params must be an object",
              "curve a string": "curve must be an object",
              "success yes": "metric success must be true or false",
              "metric a dict": "metric interpolation_mse must be a number",
              "400-digit integer": "beyond 64 bits",
              "bare status": "missing field(s)",
              "seed a string": "seed must be a number",
              "unknown status": "unknown status 'great'",
              "curve lengths": "differ in length",
              "id not its spec": "not the hash of its spec",
              "not json": "not valid JSON",
              "symlink out of the directory": "not followed",
              "nan lr": "lr must be finite"}
    for case, text in expect.items():
        assert text in why[names[case]], (case, why[names[case]])


@needs_framework
def test_run_retrains_a_bad_ok_record_on_resume(tmp_path, capsys):
    results = tmp_path / "r"
    assert run(capsys, "run", *TINY, "--results", str(results))[0] == 0
    path = sorted(results.glob("*.json"))[0]
    rec = json.loads(path.read_text())
    rec["metrics"]["success"] = "yes"
    path.write_text(json.dumps(rec))
    code, out, err = run(capsys, "run", *TINY, "--results", str(results))
    assert code == 0, err
    assert any(path.name in line and "metric success" in line for line in err), err
    assert "1 already done, 1 to train" in out
    assert json.loads(path.read_text())["metrics"]["success"] in (True, False)


# ---------------------------------------------------------------- the Dask handshake
def _server(reply: bytes | None):
    """A live port that is not Dask: silent (an HTTP server waits for a request) or
    sending ``reply``. Returns (address, stop)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve():
        conns = []
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            conns.append(conn)
            if reply:
                conn.sendall(reply)
        for conn in conns:
            conn.close()
        sock.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"tcp://127.0.0.1:{sock.getsockname()[1]}", stop


@pytest.mark.parametrize("reply,expected", [
    (None, "did not answer as a Dask scheduler within 1 s"),
    (b"\xff" * 64, "not a Dask scheduler"),
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", "not a Dask scheduler"),
], ids=["silent", "bytes", "http"])
def test_scheduler_that_is_not_dask_exit_2_in_bounded_time(tmp_path, capsys, monkeypatch,
                                                             reply, expected):
    pytest.importorskip("distributed")
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", 1)
    address, stop = _server(reply)
    try:
        start = time.perf_counter()
        code, _, err = run(capsys, "run", *TINY, "--executor", "dask", "--scheduler", address,
                           "--results", str(tmp_path / "r"))
        assert time.perf_counter() - start < 30
    finally:
        stop.set()
    assert code == 2 and len(err) == 1 and expected in err[0] and address in err[0], err


def test_handshake_accepts_a_real_scheduler():
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    with LocalCluster(host="127.0.0.1", protocol="tcp://", n_workers=0, processes=False,
                      dashboard_address=None) as cluster:
        executors.handshake(cluster.scheduler_address, timeout=5)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads an unreadable file anyway")
def test_unreadable_record_is_named(tmp_path, capsys):
    results = write([record(seed=0), record(seed=1)], tmp_path / "results")
    path = sorted(results.glob("*.json"))[0]
    path.chmod(0)
    code, _, err = run(capsys, "report", str(results), "-o", str(tmp_path / "r.html"))
    assert code == 1 and any(path.name in line and "cannot read" in line for line in err)
