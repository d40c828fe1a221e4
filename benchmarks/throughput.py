"""Training throughput on the static task's protocol, and the conventional loop to compare.

Measured as `benchmarks.plain_loop` (the conventional one-seed loop) measures: 100
inputs, batch 128, fresh data every step, evaluation every 1000 steps on 10,000 + 10,000
samples; time from the start of training to its end (data, evaluation and compilation
included; imports excluded).
"""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks import runner, suite

PROTOCOL = replace(suite.BUDGETS["paper"], name="throughput", lr=1e-3)


def measure(model: str, framework: str, seeds: int, steps: int, common_data: bool = False,
            device: str = "cpu", op: str = "add") -> dict:
    """Train ``seeds`` seeds of one configuration together; seed-steps and samples per second."""
    specs = suite.expand(["static_arithmetic"], [model], [framework], list(range(seeds)),
                         PROTOCOL, {"op": [op]}, common_data=common_data, steps=steps,
                         device=device)
    records = runner.run_group(specs)
    first = records[0]
    if first["status"] in ("error", "skipped"):
        raise RuntimeError(f"{model} {framework}: {first['status']}: {first['reason']}")
    return {"model": model, "framework": framework, "seeds": seeds, "steps": steps,
            "common_data": common_data, "device": device,
            "train_seconds": first["train_seconds"],
            "seed_steps_per_s": first["seed_steps_per_s"],
            "samples_per_s": first["samples_per_s"]}


def measure_program(model: str, framework: str, seeds: int, steps: int,
                    ops: tuple[str, ...] = ("add", "mul"), device: str = "cpu") -> dict:
    """Train ``seeds`` seeds of every op in ``ops`` and every [Primer] range pair as one
    program (the single-module task, own data); configuration-seed-steps per second."""
    from tasks.static_arithmetic import PRIMER_RANGES

    specs = [spec for op in ops for interpolation, extrapolation in PRIMER_RANGES
             for spec in suite.expand(
                 ["static_arithmetic"], [model], [framework], list(range(seeds)), PROTOCOL,
                 {"op": [op], "input_size": [2], "interpolation_range": [interpolation],
                  "extrapolation_range": [extrapolation]}, steps=steps, device=device)]
    [program] = suite.groups(specs, max_replicas=len(specs))
    records = runner.run_group(program)
    first = records[0]
    if first["status"] in ("error", "skipped"):
        raise RuntimeError(f"{model} {framework}: {first['status']}: {first['reason']}")
    return {"model": model, "framework": framework, "seeds": seeds, "steps": steps,
            "ops": list(ops), "range_pairs": len(PRIMER_RANGES), "replicas": len(program),
            "device": device, "train_seconds": first["train_seconds"],
            "configuration_seed_steps_per_s": first["seed_steps_per_s"],
            "samples_per_s": first["samples_per_s"]}


def plain_loop(model: str, steps: int, seeds: int = 2, op: str = "add") -> float:
    """seed-steps/s of the conventional one-seed-at-a-time PyTorch loop
    (`benchmarks.plain_loop`), in a process of its own as a researcher would run it."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.plain_loop", "--unit", model,
                          "--op", op, "--steps", str(steps), "--seeds", str(seeds)],
                         capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    return float(re.findall(r"seed_steps_per_s=([0-9.]+)", out)[-1])
