"""`python -m benchmarks.gpu_check` (docs/gpu.md): without a GPU it refuses with exit 2,
naming the missing GPU, and writes nothing; its dry run on the CPU at the tiny size runs
every step, writes the summary and exits 0. Both run the command as a user does, in a
subprocess, with the GPUs hidden (CUDA_VISIBLE_DEVICES=""), so that they hold on a machine
with a GPU too. The dry run trains one framework (torch where installed: it starts fastest;
about 35 s on the project's 2-core machine)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks import gpu_check
from models import registry
from reports.tests.conftest import record, write

INSTALLED = [f for f in registry.FRAMEWORKS if not registry.framework_missing(f)]
DRY = next(iter(INSTALLED), None)
needs_framework = pytest.mark.skipif(DRY is None, reason="neither torch nor tensorflow")


def check(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", *args],
                          cwd=gpu_check.REPO, env=env, capture_output=True, text=True,
                          timeout=300)


@needs_framework
def test_without_a_gpu_it_refuses_with_exit_2_and_writes_nothing(tmp_path):
    done = check("--frameworks", ",".join(INSTALLED), "--output", str(tmp_path / "out"))
    err = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(err) == 1, done.stderr
    assert "--device cuda: no GPU visible" in err[0] and "--device cpu" in err[0], err
    assert all(f"{fw} sees 0 GPU(s)" in err[0] for fw in INSTALLED), err
    assert not (tmp_path / "out").exists()


@needs_framework
def test_dry_run_on_the_cpu_runs_every_step_and_writes_the_summary(tmp_path):
    out = tmp_path / "out"
    done = check("--device", "cpu", "--tiny", "--frameworks", DRY, "--output", str(out))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# ArithBench GPU check\n\n**PASS**")
    assert "a dry run on the CPU: nothing here was measured on a GPU" in summary
    info = json.loads((out / "summary.json").read_text())
    assert sorted((s["name"], s["status"]) for s in info["steps"]) == sorted(
        (name, "ok") for name in (
            f"throughput-{DRY}-own", f"throughput-{DRY}-common", f"throughput-{DRY}-program",
            f"slice-{DRY}-device", f"slice-{DRY}-cpu",
            "compare-device-vs-cpu", "compare-cpu-vs-device"))
    assert all((out / s["log"]).is_file() for s in info["steps"])
    assert info["throughput"][f"throughput-{DRY}-own"][-1].startswith("seed_steps_per_s=")
    assert info["throughput"][f"throughput-{DRY}-program"][-1].startswith(
        "configuration_seed_steps_per_s=")
    # both slices ran on the CPU: the same runs, seed for seed
    assert [(r["framework"], r["unit"], r["cpu"], r["same_outcome"]) for r in info["slice"]] \
        == [(DRY, "nau", info["slice"][0]["device"], "2/2")]
    assert "no configuration significantly worse in B" in info["compare"][
        "compare-device-vs-cpu"]


@pytest.mark.parametrize("args,named", [
    (["--device", "gpu"], "--device 'gpu'"),
    (["--device", "cpu:0"], "--device 'cpu:0'"),
    (["--frameworks", "torch,jax"], "--frameworks 'torch,jax'"),
    (["--frameworks", "torch,torch"], "--frameworks 'torch,torch'"),
    (["--time-limit", "0"], "--time-limit"),
])
def test_bad_arguments_exit_2_before_anything_runs(capsys, tmp_path, args, named):
    assert gpu_check.main([*args, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0], err
    assert not (tmp_path / "out").exists()


@needs_framework
def test_an_output_directory_in_use_is_refused(capsys, tmp_path):
    (tmp_path / "summary.md").write_text("an earlier check\n")
    assert gpu_check.main(["--device", "cpu", "--frameworks", DRY,
                           "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an empty directory" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.md"]


def test_a_step_past_its_timeout_is_stopped_and_none_starts_past_the_limit(tmp_path):
    (tmp_path / "logs").mkdir()
    run = gpu_check.Check(tmp_path, time_limit=30.0)
    step = run.execute(gpu_check.Step("sleep", ["-c", "import time; time.sleep(60)"], 1.0),
                       dict(os.environ))
    assert step.status == "timed out after 1 s" and step.seconds < 20
    late = gpu_check.Check(tmp_path, time_limit=gpu_check.MIN_START - 1)
    step = late.execute(gpu_check.Step("late", ["-c", "pass"], 60.0), dict(os.environ))
    assert step.status.startswith("not run") and step.code is None


def test_slice_table_counts_each_side_and_the_seeds_that_agree(tmp_path):
    pair = {"input_size": 2, "interpolation_range": [[1.0, 2.0]],
            "extrapolation_range": [[2.0, 6.0]]}
    cpu = write([record(seed=s, unit="nmu", op="mul", params=pair, success=s != 2)
                 for s in range(4)], tmp_path / "cpu")
    device = write([record(seed=s, unit="nmu", op="mul", params=pair, success=s != 3,
                           spec={"device": "cuda"}) for s in range(4)], tmp_path / "device")
    assert gpu_check.slice_table(cpu, device) == [
        {"framework": "torch", "unit": "nmu", "op": "mul", "interpolation": "[1,2]",
         "extrapolation": "[2,6]", "cpu": "3/4", "device": "3/4", "same_outcome": "2/4"}]
