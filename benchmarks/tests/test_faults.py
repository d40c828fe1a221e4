"""Faults: a dying worker, a killed CLI, corrupt records and a failing disk never lose or
duplicate a record, and never leave a partial one.

One replica diverging in a vectorised group is covered where groups are trained:
``models/tests/test_vectorised.py::test_diverging_replica_leaves_the_others_alone``.
"""
import errno
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from benchmarks import cli, store
from benchmarks.store import Store
from benchmarks.tests.test_cli import ROOT, TINY, run_cli

# Six groups of two seeds: long enough that a kill lands mid-sweep.
SIX = [a if a != "nau,linear" else "nau,linear,nac,relu6,relu,nalu" for a in TINY]
SIX[SIX.index("--steps") + 1] = "500"


def _check_dir(results, expected):
    """Every record file parses, each spec once, and the store reads nothing else."""
    files = sorted(results.glob("*.json"))
    ids = [json.loads(p.read_text())["id"] for p in files]
    assert len(ids) == len(set(ids)) == expected
    s = Store(results, create=False)
    assert len(list(s.records())) == expected and not s.corrupt


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                    reason="dask.distributed is not installed (the dask extra)")
def test_worker_killed_mid_sweep(tmp_path, monkeypatch, capsys):
    from distributed import default_client

    killed, writes = [], []
    real_write = Store.write

    def write_then_kill(self, record):
        writes.append(record["id"])
        if not killed:  # after the first record: kill a worker that is training a group
            client = default_client()
            busy = [w for w, keys in client.processing().items() if keys]
            assert busy, "no task in flight to kill"
            pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        return real_write(self, record)

    monkeypatch.setattr(Store, "write", write_then_kill)
    results = tmp_path / "r"
    assert cli.main(["run", *SIX, "--results", str(results), "--executor", "dask",
                     "--workers", "2"]) == 0
    assert killed
    assert len(writes) == len(set(writes)) == 12
    _check_dir(results, 12)
    capsys.readouterr()


def test_cli_killed_mid_sweep_then_resumed(tmp_path):
    results = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks", "run", *SIX, "--results",
                             str(results)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(results.glob("*.json")) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    done = len(list(results.glob("*.json")))
    assert 0 < done < 12, "the kill did not land mid-sweep"
    for path in results.glob("*.json"):
        json.loads(path.read_text())  # nothing partial
    rerun = run_cli("run", *SIX, "--results", str(results))
    assert rerun.returncode == 0, rerun.stderr
    assert f"{done} already done, {12 - done} to train" in rerun.stdout
    _check_dir(results, 12)


def test_corrupt_and_truncated_records_are_named_rerun_and_reported(tmp_path, capsys):
    results = tmp_path / "r"
    assert cli.main(["run", *TINY, "--results", str(results)]) == 0
    truncated, garbage = sorted(results.glob("*.json"))[:2]
    truncated.write_text(truncated.read_text()[:100])
    garbage.write_bytes(b"\x00\xff not json")
    capsys.readouterr()
    html = tmp_path / "report.html"
    assert cli.main(["report", str(results), "-o", str(html)]) == 1  # named, left out: exit 1
    assert truncated.name in html.read_text()
    capsys.readouterr()
    assert cli.main(["run", *TINY, "--results", str(results)]) == 0
    captured = capsys.readouterr()
    assert truncated.name in captured.err and garbage.name in captured.err
    assert "2 already done, 2 to train" in captured.out
    _check_dir(results, 4)


def records_fail(monkeypatch, failing) -> list:
    """Make the disk full for the record writes (not the checkpoints') whose 1-based number
    ``failing(n)`` picks; returns the record paths tried, in order."""
    real_replace, calls = os.replace, []

    def replace(src, dst):
        if str(dst).endswith(".json"):
            calls.append(dst)
            if failing(len(calls)):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst)

    monkeypatch.setattr(store.os, "replace", replace)
    return calls


@pytest.mark.parametrize("executor", ["local", "processes"])
def test_failed_write_one_line_exit_1_earlier_records_intact(tmp_path, monkeypatch, capsys,
                                                            executor):
    results = tmp_path / "r"
    records_fail(monkeypatch, lambda n: n > 2)
    code = cli.main(["run", *TINY, "--results", str(results), "--executor", executor])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1  # the work was not kept: not bad input
    assert len(err) == 1 and str(results) in err[0] and "No space left" in err[0]
    # the first two records, no temp file (and run's lock, and the checkpoint of the program
    # whose records were not written)
    assert sorted(p.suffix or p.name for p in results.iterdir()) == [
        ".checkpoints", ".json", ".json", ".lock"]
    assert len(list((results / ".checkpoints").glob("*.npz"))) == 1
    _check_dir(results, 2)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a read-only directory anyway")
def test_read_only_results_directory_after_first_records(tmp_path, monkeypatch, capsys):
    results = tmp_path / "r"
    real_write = Store.write

    def write_then_lock(self, record):
        path = real_write(self, record)
        results.chmod(0o500)
        return path

    monkeypatch.setattr(Store, "write", write_then_lock)
    try:
        assert cli.main(["run", *TINY, "--results", str(results)]) == 2
    finally:
        results.chmod(0o700)
    assert str(results) in capsys.readouterr().err
    _check_dir(results, 1)
