"""Hand-written run records in the exact shape benchmarks.runner writes them."""
from __future__ import annotations

import json
import math

import pytest

from benchmarks.records import RunSpec

SPEC = dict(task="static_arithmetic", budget="quick", steps=3000, batch_size=128, lr=1e-3,
            eval_interval=1000, schedule_scale=0.004)
PARAMS = {"op": "add", "input_size": 100, "interpolation_range": [[1.0, 2.0]],
          "extrapolation_range": [[-6.0, -2.0], [2.0, 6.0]]}
MACHINE = {"platform": "Linux-test", "processor": "x86_64", "cpus": 4, "node": "testhost"}
MAGNITUDE = {"start": [1.0, 3.0, 5.0, 7.0], "width": 1.0, "mse": [1e-6, 1e-4, 1e-2, None]}
PUBLISHED = {"input_size": 100, "interpolation_range": [1.0, 2.0],
             "extrapolation_range": [2.0, 6.0]}  # the static task's defaults: [NAU]'s protocol
HOSTILE = "<script>alert(1)</script> tensorflow is not installed"


def record(status="ok", seed=0, unit="nau-nmu", framework="torch", op="add", reason="",
           params=None, spec=None, **metrics) -> dict:
    """A record as benchmarks.records.build builds it; metrics and curve only for finished runs.
    params and spec replace entries of PARAMS and SPEC."""
    spec = RunSpec.make({**PARAMS, "op": op, **(params or {})}, unit=unit, framework=framework,
                        seed=seed, **{**SPEC, **(spec or {})})
    rec = {"id": spec.id, **spec.to_dict(), "status": status, "reason": reason,
           "versions": {"python": "3.12.0", "numpy": "2.0.0", framework: "2.13.0"},
           "machine": MACHINE}
    if status in ("ok", "diverged"):
        m = {"interpolation_mse": 1e-6, "extrapolation_mse": 1e-4, "interpolation_normalised": 0.1,
             "extrapolation_normalised": 0.2, "threshold": 1e-3, "success": True,
             "solved_at": 1000, "selected_step": 2000, "sparsity_error": 0.01}
        if status == "diverged":
            m.update(extrapolation_mse=math.nan, success=False, solved_at=None)
        rec |= {"metrics": {**m, **metrics},
                "curve": {"step": [0, 1000, 2000], "interpolation": [1.0, 0.1, 1e-6],
                          "extrapolation": [9.0, 0.5, 1e-4]},
                "group_size": 1, "train_seconds": 1.5, "wall_seconds": 2.0,
                "seed_steps_per_s": 2000.0, "samples_per_s": 256000.0, "python": "3.12.0"}
    elif status == "error":
        rec |= {"traceback": "Traceback ...\nRuntimeError: boom", "wall_seconds": 0.1}
    return rec


def write(records: list[dict], directory):
    """One JSON file per record, NaN allowed, as benchmarks.store writes them."""
    directory.mkdir(parents=True, exist_ok=True)
    for rec in records:
        with open(directory / f"{rec['id']}.json", "w") as fh:
            json.dump(rec, fh, allow_nan=True)
    return directory


def report_records() -> list[dict]:
    """Three models over two ops x both frameworks x 3 seeds with magnitude curves, a diverged
    run, and a skipped one whose reason is markup: everything a report draws."""
    runs = [record(seed=s, op=op, unit=unit, framework=fw, magnitude_curve=MAGNITUDE,
                   success=s == 0 if unit == "nalu" else s != 2)
            for op, unit in (("add", "nau"), ("add", "nalu"), ("mul", "nau-nmu"))
            for fw in ("torch", "tf") for s in range(3)]
    return [*runs, record("diverged", seed=9, op="mul", unit="nalu",
                          reason="non-finite error at step 2000"),
            record("skipped", seed=3, framework="tf", reason=HOSTILE)]


def published_records(outcomes: dict, steps: int = 3000, **kw) -> list[dict]:
    """Runs at [NAU]'s published task configuration: {(op, unit): successes out of len} as
    {(op, unit): [True, False, ...]}, one seed per entry."""
    return [record(seed=s, op=op, unit=unit, params=PUBLISHED, spec={"steps": steps},
                   success=won, solved_at=1000 if won else None, **kw)
            for (op, unit), wins in outcomes.items() for s, won in enumerate(wins)]


@pytest.fixture
def results_dir(tmp_path):
    """2 ok (one sub), 1 diverged, 1 skipped, 1 error and one corrupt file."""
    records = [record(seed=0), record(seed=1, op="sub", success=False, solved_at=None),
               record("diverged", seed=2, reason="non-finite error at step 2000"),
               record("skipped", seed=3, framework="tf", reason=HOSTILE),
               record("error", seed=4, reason="RuntimeError: boom")]
    directory = write(records, tmp_path / "results")
    (directory / ("0" * 20 + ".json")).write_text('{"id": "truncated", "sta')
    return directory
