"""Outputs never destroy inputs, and a gate never fails open: a closed or full stdout is
never exit 0, `-o` never overwrites an input or a file the command did not write, every
output is written atomically, a saved table is checked before it is trusted, `fetch` is
bounded in time and leaves nothing partial on a signal, and the smaller refusals."""
from __future__ import annotations

import errno
import http.server
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import cli, store
from benchmarks.tests.test_compare import baseline, worse
from benchmarks.tests.test_exit_status import TINY, needs_framework
from benchmarks.tests.test_faults import records_fail
from reports import frame
from reports.tests.conftest import record, write

ROOT = Path(__file__).resolve().parents[2]


def cli_run(*args, stdin=None, env=None, timeout=120, shell=None):
    """`python -m benchmarks ARGS` (or a shell line) in a subprocess: (status, out, err)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    command = shell if shell else [sys.executable, "-m", "benchmarks", *map(str, args)]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=timeout, shell=bool(shell), executable="/bin/bash"
                          if shell else None)
    return proc.returncode, proc.stdout, proc.stderr


def main(capsys, *args):
    """cli.main in this process: (status, stdout, stderr lines)."""
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


@pytest.fixture
def dirs(tmp_path):
    """A, and B in which nau's success on add dropped significantly."""
    return write(baseline(), tmp_path / "a"), write(worse(), tmp_path / "b")


# fail closed ------------------------------------------------------------------------------

def test_a_regression_piped_into_a_closed_reader_is_not_exit_0(dirs):
    a, b = dirs
    assert cli_run("compare", a, b, "--alpha", "0.1")[0] == 1
    code, _, err = cli_run(shell=f"set -o pipefail; {sys.executable} -m benchmarks compare "
                                 f"{a} {b} --alpha 0.1 | head -0")
    assert code == 1 and "Traceback" not in err


@needs_framework
def test_run_into_a_closed_pipe_trains_nothing_and_is_not_exit_0(tmp_path):
    results = tmp_path / "r"
    line = (f"set -o pipefail; {sys.executable} -m benchmarks run "
            f"{' '.join(map(shlex.quote, TINY))} --results {results} | head -0")
    code, _, err = cli_run(shell=line)
    assert code == 1, err
    assert "standard output" in err and "Traceback" not in err
    assert not list(results.glob("*.json"))


def test_stdout_full_is_exit_1_in_one_line():
    code, _, err = cli_run(shell=f"{sys.executable} -m benchmarks list > /dev/full")
    assert code == 1
    assert err.strip().splitlines() == [
        "python -m benchmarks: error: cannot write to standard output (No space left on "
        "device); exit status 1"]


# -o never destroys an input ---------------------------------------------------------------

def test_compare_o_naming_its_own_input_is_refused(tmp_path, dirs, capsys):
    a, b = dirs
    table = tmp_path / "t" / "results.parquet"
    assert main(capsys, "report", a, "-o", tmp_path / "t" / "report.html")[0] == 0
    before = table.read_bytes()
    code, _, err = main(capsys, "compare", table, table, "-o", table)
    assert code == 2 and len(err) == 1 and "is the input" in err[0]
    assert table.read_bytes() == before
    one = next(b.glob("*.json"))
    text = one.read_text()
    for argv in (["compare", a, b, "-o", one], ["report", b, "-o", one]):
        code, _, err = main(capsys, *argv)
        assert code == 2 and len(err) == 1 and "lies inside the input" in err[0], err
        assert one.read_text() == text


def test_report_never_replaces_a_table_it_did_not_write(tmp_path, dirs, capsys):
    a, b = dirs
    there = tmp_path / "baseline"
    assert main(capsys, "report", b, "-o", there / "report.html")[0] == 0
    (there / "report.html").unlink()  # a copy of a published table, no report beside it
    table = (there / "results.parquet").read_bytes()
    code, _, err = main(capsys, "report", a, "-o", there / "report.html")
    assert code == 2 and len(err) == 1
    assert "results.csv" in err[0] and "exists and is not an ArithBench report page" in err[0]
    assert (there / "results.parquet").read_bytes() == table
    assert not (there / "report.html").exists()
    # the table beside -o read as the input: refused as an input
    code, _, err = main(capsys, "report", there / "results.parquet", "-o",
                        there / "report.html")
    assert code == 2 and "is the input" in err[0]
    # an existing file that is no report is not overwritten either
    page = tmp_path / "notes.html"
    page.write_text("<html><title>my notes</title></html>")
    assert main(capsys, "report", a, "-o", page)[0] == 2
    assert page.read_text() == "<html><title>my notes</title></html>"


def test_report_replaces_its_own_output_and_names_the_tables(tmp_path, dirs, capsys):
    a, _ = dirs
    out = tmp_path / "o" / "report.html"
    for _ in range(2):
        code, stdout, _ = main(capsys, "report", a, "-o", out)
        assert code == 0
        assert str(out.parent / "results.csv") in stdout
        assert str(out.parent / "results.parquet") in stdout
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "report.html", "results.csv", "results.parquet"]


# atomic writes, a full disk ---------------------------------------------------------------

def _full_for(name, monkeypatch):
    """os.replace fails with ENOSPC when it would put `name` in place."""
    real = os.replace

    def replace(src, dst):
        if Path(dst).name == name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst)
    monkeypatch.setattr(store.os, "replace", replace)


@pytest.mark.parametrize("name", ["results.parquet", "report.html"])
def test_report_on_a_full_disk_is_exit_1_naming_the_file_older_one_intact(
        tmp_path, dirs, capsys, monkeypatch, name):
    a, b = dirs
    out = tmp_path / "o" / "report.html"
    assert main(capsys, "report", b, "-o", out)[0] == 0
    before = {p.name: p.read_bytes() for p in out.parent.iterdir()}
    _full_for(name, monkeypatch)
    code, _, err = main(capsys, "report", a, "-o", out)
    assert code == 1 and len(err) == 1
    assert str(out.parent / name) in err[0] and "No space left" in err[0]
    after = {p.name: p.read_bytes() for p in out.parent.iterdir()}
    assert set(after) == set(before)  # no temporary file left
    assert after[name] == before[name]


def test_compare_o_on_a_full_disk_is_exit_1_naming_the_file(tmp_path, dirs, capsys,
                                                            monkeypatch):
    a, b = dirs
    _full_for("cmp.html", monkeypatch)
    code, _, err = main(capsys, "compare", a, a, "-o", tmp_path / "cmp.html")
    assert code == 1 and len(err) == 1 and "cmp.html" in err[0]
    assert list(tmp_path.glob("*cmp.html*")) == []


@needs_framework
def test_run_on_a_full_disk_keeps_every_record_that_fits_exit_1(tmp_path, capsys,
                                                                 monkeypatch):
    results = tmp_path / "r"
    calls = records_fail(monkeypatch, lambda n: n == 1)
    code, _, err = main(capsys, "run", *TINY, "--results", results)
    assert code == 1 and len(err) == 1, err
    assert str(calls[0]) in err[0] and "No space left" in err[0]
    assert "1 records written, 1 finished runs not" in err[0]
    assert len(list(results.glob("*.json"))) == 1  # the other finished run is kept
    assert not list(results.glob(".*.tmp"))


# a budget never overrides --param ---------------------------------------------------------

@pytest.mark.parametrize("param", ["input_size=100", "protocol=suite"])
def test_budget_conflicting_with_param_is_refused(tmp_path, capsys, param):
    code, _, err = main(capsys, "run", "--budget", "primer", "--tasks", "static_arithmetic",
                        "--frameworks", "torch", "--param", param, "--results", tmp_path / "r")
    key = param.partition("=")[0]
    assert code == 2 and len(err) == 1
    assert f"--param {param} conflicts with budget 'primer'" in err[0] and f"{key}=" in err[0]
    assert not (tmp_path / "r").exists()


# fetch ------------------------------------------------------------------------------------

class Trickle:
    """An HTTP server that announces 1000 bytes and sends one every 0.3 s."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                try:
                    for _ in range(1000):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.3)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def trickle():
    server = Trickle()
    yield server.url
    server.server.shutdown()


def test_fetch_gives_up_a_trickling_mirror_at_its_deadline(tmp_path, trickle):
    start = time.monotonic()
    code, _, err = cli_run("fetch", "mnist", "--dir", tmp_path, "--mirror", trickle,
                           "--timeout", "2", timeout=60)
    assert code == 1 and "not done within 2 s" in err and "Traceback" not in err
    assert time.monotonic() - start < 30
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_fetch_interrupted_leaves_no_temporary_file_and_no_traceback(tmp_path, trickle,
                                                                     signum):
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks", "fetch", "mnist", "--dir",
                             str(tmp_path), "--mirror", trickle], cwd=ROOT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)  # the download has begun once its temporary file is there
    assert list(tmp_path.iterdir()), "the download never began"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum
    assert "Traceback" not in err and "interrupted" in err
    assert list(tmp_path.iterdir()) == []


def test_fetch_bad_arguments_are_exit_2(tmp_path, capsys):
    a_file = tmp_path / "f"
    a_file.write_text("")
    for argv, named in ((["--dir", a_file], "--dir"), (["--mirror", "ftp//nowhere"],
                                                        "--mirror"),
                        (["--timeout", "0"], "--timeout")):
        code, _, err = main(capsys, "fetch", "mnist", *argv)
        assert code == 2 and len(err) == 1 and named in err[0], err


# saved tables checked on read -------------------------------------------------------------

@pytest.fixture
def table(tmp_path, dirs, capsys):
    """A results.parquet that `report` wrote from B."""
    assert main(capsys, "report", dirs[1], "-o", tmp_path / "t" / "report.html")[0] == 0
    return tmp_path / "t" / "results.parquet"


def test_a_table_whose_success_holds_text_is_refused(tmp_path, table, dirs, capsys):
    df = pd.read_parquet(table)
    df["success"] = df["success"].astype(str)
    bad = tmp_path / "bad.parquet"
    df.to_parquet(bad)
    for argv in (["compare", dirs[0], bad], ["report", bad, "-o", tmp_path / "r.html"]):
        code, _, err = main(capsys, *argv)
        assert code == 2 and len(err) == 1, err
        assert "is not a results table: column success must hold true or false" in err[0]


def test_a_table_with_zeroed_bytes_is_refused(tmp_path, table, dirs, capsys):
    data = bytearray(table.read_bytes())
    middle = len(data) // 3
    data[middle:middle + 64] = bytes(64)
    bad = tmp_path / "zeroed.parquet"
    bad.write_bytes(bytes(data))
    code, _, err = main(capsys, "compare", dirs[0], bad)
    assert code == 2 and len(err) == 1 and "is not a results table" in err[0], err


def test_a_csv_is_said_to_be_no_results_table(table, dirs, capsys):
    csv = table.with_suffix(".csv")
    for argv in (["compare", dirs[0], csv], ["report", csv]):
        code, _, err = main(capsys, *argv)
        assert code == 2 and len(err) == 1
        assert "is not a results table" in err[0] and "does not exist" not in err[0]


def test_compare_exits_1_when_it_left_out_an_untrusted_record(dirs, capsys):
    a, _ = dirs
    assert main(capsys, "compare", a, a)[0] == 0
    (a / ("0" * 20 + ".json")).write_text("{not json")
    code, _, err = main(capsys, "compare", a, a)
    assert code == 1 and any(line.startswith("left out:") for line in err)


# the smaller refusals ---------------------------------------------------------------------

def test_no_option_is_taken_for_an_abbreviation(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--ops", "sub", "--op", "add"])
    assert exit_.value.code == 2 and "--op" in capsys.readouterr().err


@pytest.mark.parametrize("argv, named", [
    (["--tasks", "static_arithmetic", "--param", "input_size=3", "--param", "input_size=4"],
     "--param input_size given twice"),
    (["--tasks", "text_to_number", "--ops", "mul"], "no selected task takes an op"),
])
def test_run_refusals(tmp_path, capsys, argv, named):
    code, _, err = main(capsys, "run", *argv, "--results", tmp_path / "r")
    assert code == 2 and len(err) == 1 and named in err[0], err


def test_a_long_bad_value_is_cut_in_its_one_line(tmp_path, capsys):
    code, _, err = main(capsys, "run", "--units", "x" * 100_000, "--results", tmp_path / "r")
    assert code == 2 and len(err) == 1
    assert len(err[0]) < 600 and "… (100,002 characters)" in err[0]


def test_no_numpy_repr_in_a_message(tmp_path, capsys):
    code, _, err = main(capsys, "run", "--tasks", "static_arithmetic", "--param",
                        "interpolation_range=1,1.00000001", "--results", tmp_path / "r")
    assert code == 2 and len(err) == 1
    assert "[1.0, 1.00000001]: low and high are equal in float32" in err[0]
    assert cli.plain("bad eps np.float64(1.0); bad size np.int64(3)") == \
        "bad eps 1.0; bad size 3"


def test_report_on_an_empty_directory_is_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = main(capsys, "report", tmp_path / "empty", "-o", tmp_path / "r.html")
    assert code == 2 and len(err) == 1 and "holds no records" in err[0]
    assert not (tmp_path / "r.html").exists()


def test_a_second_run_on_a_locked_directory_is_refused(tmp_path, capsys):
    results = tmp_path / "r"
    results.mkdir()
    held = store.lock(results)
    code, _, err = main(capsys, "run", "--tasks", "static_arithmetic", "--frameworks",
                        "torch", "--steps", "1", "--results", results)
    assert code == 2 and len(err) == 1 and "in use by a run in progress" in err[0], err
    assert str(os.getpid()) in err[0]
    held.close()
    store.lock(results).close()  # released: taken again at once


def test_a_lock_left_by_a_dead_process_does_not_block(tmp_path):
    results = tmp_path / "r"
    results.mkdir()
    subprocess.run([sys.executable, "-c", "import sys; from benchmarks import store; "
                    f"store.lock({str(results)!r}); sys.exit(0)"], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (results / ".lock").read_text().strip()  # the dead process's pid
    store.lock(results).close()


def test_tensorflow_start_up_lines_are_quiet_unless_asked_for():
    pytest.importorskip("tensorflow")
    code, out, err = cli_run(shell=f"{sys.executable} -c 'import benchmarks.__main__, os, "
                                   "tensorflow; print(os.environ[\"TF_CPP_MIN_LOG_LEVEL\"])'")
    assert code == 0 and out.strip() == "2"
    assert "absl::InitializeLog" not in err and "cpu_feature_guard" not in err, err
    code, out, _ = cli_run(shell=f"{sys.executable} -c 'import benchmarks.__main__, os; "
                                 "print(os.environ[\"TF_CPP_MIN_LOG_LEVEL\"])'",
                           env={"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert out.strip() == "0"


def test_records_read_back_after_report_keep_their_json(tmp_path, dirs):
    """A table `save` writes reads back through the same checks (a round trip)."""
    rec = record(seed=7)
    df = frame.frame([rec])
    frame.save(df, tmp_path)
    back = frame.read_table(tmp_path / "results.parquet")
    assert back["id"].tolist() == [rec["id"]]
    assert json.loads(json.dumps(back["success"].tolist())) == [True]
