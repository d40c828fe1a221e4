"""Executors: the same sweep gives the same records locally, in a process pool and on Dask."""
import importlib.util
import json

import pytest

from benchmarks import cli, executors
from benchmarks.tests.test_cli import TINY, run_cli

dask_missing = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                  reason="dask.distributed is not installed (the dask extra)")


def _records(results):
    return {r["id"]: r for r in (json.loads(p.read_text()) for p in results.glob("*.json"))}


def _same(a, b):
    """Exact equality that also holds for NaN (as JSON writes it)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@dask_missing
def test_same_records_on_every_executor(tmp_path, monkeypatch, capsys):
    results, updates = {}, {}
    for name in ("local", "processes", "dask"):
        updates[name] = []
        monkeypatch.setattr(cli, "tqdm", _bar(updates[name]))
        assert cli.main(["run", *TINY, "--results", str(tmp_path / name), "--executor", name,
                         "--workers", "2"]) == 0
        results[name] = _records(tmp_path / name)
    assert len(results["local"]) == 4
    for name in ("processes", "dask"):
        assert results[name].keys() == results["local"].keys()
        for rid, local in results["local"].items():
            assert results[name][rid]["status"] == local["status"]
            assert _same(results[name][rid]["metrics"], local["metrics"]), name
            assert _same(results[name][rid]["curve"], local["curve"]), name
        assert updates[name] == [120, 120]  # per finished group: 2 seeds x 60 steps
    assert sum(updates["local"]) == 240  # in-process: live, per chunk of steps
    capsys.readouterr()


@pytest.mark.parametrize("args,bad", [
    (["--executor", "spark"], "'spark'"),
    (["--executor", "processes", "--workers", "0"], "--workers 0"),
    (["--executor", "local", "--scheduler", "tcp://127.0.0.1:1"], "tcp://127.0.0.1:1"),
    (["--executor", "dask", "--scheduler", "127.0.0.1:8786"], "'127.0.0.1:8786'"),
    (["--max-replicas", "0"], "--max-replicas 0"),
])
def test_bad_executor_options_one_line_exit_2(tmp_path, capsys, args, bad):
    assert cli.main(["run", *TINY, "--results", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0] and bad in err[0]
    assert not list(tmp_path.glob("*.json"))


@dask_missing
def test_unreachable_scheduler_one_line_exit_2(tmp_path):
    proc = run_cli("run", *TINY, "--results", str(tmp_path), "--executor", "dask",
                   "--scheduler", "tcp://127.0.0.1:9")  # nothing listens on the discard port
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and "'tcp://127.0.0.1:9'" in lines[0]
    assert not list(tmp_path.glob("*.json"))


@dask_missing
def test_local_cluster_listens_on_loopback_only():
    with executors.get("dask", workers=1) as ex:
        assert ex.cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        workers = ex.client.scheduler_info()["workers"]
        assert workers and all(w.startswith("tcp://127.0.0.1:") for w in workers)


class _Twice(executors.Local):
    """Yields every group's result twice, as a retried Dask task could."""

    in_process = False

    def map(self, fn, items):
        for item in items:
            result = fn(item)
            yield item, result
            yield item, [dict(r, metrics={"changed": True}) for r in result]


def test_duplicate_results_are_written_and_counted_once(tmp_path, monkeypatch, capsys):
    from benchmarks.store import Store

    writes = []
    real_write = Store.write
    monkeypatch.setattr(Store, "write", lambda self, rec: writes.append(rec["id"])
                        or real_write(self, rec))
    monkeypatch.setattr(executors, "get", lambda *a, **k: _Twice())
    updates = []
    monkeypatch.setattr(cli, "tqdm", _bar(updates))
    assert cli.main(["run", *TINY, "--results", str(tmp_path)]) == 0
    assert len(writes) == len(set(writes)) == 4
    assert all("changed" not in r["metrics"] for r in _records(tmp_path).values())
    assert updates == [120, 120]  # one update per group: 2 seeds x 60 steps, never twice
    capsys.readouterr()


def _bar(updates):
    """A tqdm stand-in that records each update."""
    class Bar:
        def __init__(self, *a, **k):
            pass

        def update(self, n):
            updates.append(n)

        def close(self):
            pass

        write = staticmethod(print)
    return Bar
