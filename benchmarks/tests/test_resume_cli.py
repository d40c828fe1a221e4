"""The real command line stopped by SIGTERM in the middle of each program, once per program,
then rerun: the records equal those of an uninterrupted run, field for field, in every task
whose seeds train as one program and in each installed framework; the executors' workers
save their programs' checkpoints too."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import tasks
from benchmarks import cli, runner, suite
from benchmarks.tests.test_cli import ROOT, run_cli
from benchmarks.tests.test_resume import comparable
from models import checkpoint, registry
from tasks import digits

FRAMEWORKS = [f for f in registry.FRAMEWORKS if not registry.framework_missing(f)]
pytestmark = pytest.mark.skipif(not FRAMEWORKS, reason="neither torch nor tensorflow")

# per task, a model and parameters making one program per framework of a few seconds, with
# a chunk boundary every few dozen steps
TASKS = {
    "static_arithmetic": ["--units", "nau", "--ops", "add", "--steps", "4000",
                          "--param", "input_size=10", "--param", "eval_size=200"],
    "recurrent_arithmetic": ["--units", "lstm-linear", "--steps", "600",
                             "--param", "eval_size=50", "--param", "test_lengths=20"],
    "text_to_number": ["--units", "nalu", "--steps", "600"],
    "mnist_counting": ["--units", "nau", "--steps", "500", "--param", "test_sequences=50"],
    "sequential_mnist": ["--units", "nau", "--steps", "400", "--param", "thresholds=none",
                         "--param", "test_lengths=1,10"],
    # its own A2C loop, the seeds as one program with one checkpoint
    "grid_world": ["--units", "lstm+nau", "--steps", "100", "--param", "eval_episodes=2",
                   "--param", "test_T=1,20"],
}
COMMON = ["--seeds", "0-1", "--budget", "smoke", "--quiet", "--checkpoint-every", "1e-6",
          "--frameworks", ",".join(FRAMEWORKS)]


def cli_args(task: str, results) -> list[str]:
    return ["run", "--tasks", task, *TASKS[task], *COMMON, "--results", str(results)]


def groups_of(task: str) -> list[list]:
    """The programs the command line trains, built as it builds them."""
    args = cli.build_parser().parse_args(cli_args(task, "unused"))
    grid = cli._task_grid(args, [task])
    specs = suite.expand([task], args.units.split(","), FRAMEWORKS, [0, 1],
                         suite.get_budget("smoke"), grid, steps=args.steps)
    return suite.groups(specs)


def stop_when_saved(args: list[str], ckpt_dir, group_ids: list[str], timeout: float = 240):
    """Start the command line, SIGTERM it as soon as the program ``group_ids`` has saved a
    checkpoint (mid-program), and return its exit status and stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    key = checkpoint.group_key(group_ids)
    while not list(ckpt_dir.glob(f"{key}-*.npz")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.parametrize("task", list(TASKS))
def test_sigterm_mid_program_then_rerun_is_bit_for_bit(task, tmp_path, monkeypatch):
    monkeypatch.delenv(digits.ENV, raising=False)  # the command line and this process alike
    results = tmp_path / "r"
    ckpt_dir = results / checkpoint.DIRECTORY
    groups = groups_of(task)
    assert len(groups) == len(FRAMEWORKS), "one program per framework"
    for group in groups:  # each program stopped once, mid-way, by SIGTERM
        ids = [s.id for s in group]
        code, err = stop_when_saved(cli_args(task, results), ckpt_dir, ids)
        assert code == 128 + signal.SIGTERM, err
        assert "checkpoint(s) of unfinished programs kept" in err, err
        assert not any((results / f"{i}.json").exists() for i in ids), \
            "the program finished before the signal: make it longer"
    rerun = run_cli(*cli_args(task, results))
    assert rerun.returncode == 0, rerun.stderr
    assert "set aside" not in rerun.stderr, "the checkpoints were trusted and continued"
    assert not list(ckpt_dir.glob("*.npz")), "checkpoints are removed with their records"
    for group in groups:
        plain = runner.run_group(group)
        written = [json.loads((results / f"{s.id}.json").read_text()) for s in group]
        assert [comparable(r) for r in written] == [comparable(r) for r in plain]


@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_executor_workers_save_and_resume(executor, tmp_path):
    if executor == "dask" and importlib.util.find_spec("distributed") is None:
        pytest.skip("dask.distributed is not installed (the dask extra)")
    task = "static_arithmetic"
    results = tmp_path / "r"
    (group,) = [g for g in groups_of(task) if g[0].framework == FRAMEWORKS[0]]
    args = [a if a != ",".join(FRAMEWORKS) else FRAMEWORKS[0] for a in cli_args(task, results)]
    args += ["--executor", executor, "--workers", "1"]
    code, err = stop_when_saved(args, results / checkpoint.DIRECTORY, [s.id for s in group])
    assert code == 128 + signal.SIGTERM, err
    assert "checkpoint(s) of unfinished programs kept" in err, err
    rerun = run_cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert not list(results.glob(f"{checkpoint.DIRECTORY}/*.rejected"))
    plain = runner.run_group(group)
    written = [json.loads((results / f"{s.id}.json").read_text()) for s in group]
    assert [comparable(r) for r in written] == [comparable(r) for r in plain]


def test_checkpoint_every_is_checked():
    bad = run_cli("run", "--tasks", "static_arithmetic", "--checkpoint-every", "-1")
    assert bad.returncode == 2 and "bad --checkpoint-every -1" in bad.stderr


def test_the_tasks_here_are_all_that_train_seeds_as_programs():
    """Every task but MNIST addition (MNIST counting's loop, another target) is covered
    above."""
    assert set(TASKS) | {"mnist_addition"} == set(tasks.TASKS)


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                    reason="dask.distributed is not installed (the dask extra)")
def test_dask_worker_lost_mid_program_resumes_from_its_checkpoint(tmp_path, capsys):
    """The worker training a program is killed once the program has a checkpoint: Dask
    reruns the group on the restarted worker, which continues from the checkpoint."""
    import threading

    from distributed import default_client

    task = "static_arithmetic"
    results = tmp_path / "r"
    (group,) = [g for g in groups_of(task) if g[0].framework == FRAMEWORKS[0]]
    args = [a if a != ",".join(FRAMEWORKS) else FRAMEWORKS[0] for a in cli_args(task, results)]
    key = checkpoint.group_key([s.id for s in group])
    killed = []

    def kill_when_saved():
        deadline = time.monotonic() + 240
        while not list((results / checkpoint.DIRECTORY).glob(f"{key}-*.npz")):
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)
        pids = default_client().run(os.getpid)
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)
        killed.extend(pids.values())

    watcher = threading.Thread(target=kill_when_saved, daemon=True)
    watcher.start()
    assert cli.main([*args, "--executor", "dask", "--workers", "1"]) == 0
    watcher.join(5)
    assert killed, "the worker was not killed"
    assert not list(results.glob(f"{checkpoint.DIRECTORY}/*.rejected"))
    plain = runner.run_group(group)
    written = [json.loads((results / f"{s.id}.json").read_text()) for s in group]
    assert [comparable(r) for r in written] == [comparable(r) for r in plain]
    capsys.readouterr()
