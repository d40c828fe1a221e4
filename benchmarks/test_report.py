"""The report at scale: load + render of 10,000 records written as the runner writes them.

A paper-budget sweep is 100 seeds x every op x model x framework; the report must stay
interactive (target: under 10 s on the 2-core development machine).
"""
from __future__ import annotations

import json

import numpy as np

from benchmarks.records import RunSpec
from reports import frame, html
from tasks.static_arithmetic import DEFAULT_MATRIX

RECORDS, POINTS = 10_000, 20
PARAMS = {"input_size": 100, "interpolation_range": [[1.0, 2.0]],
          "extrapolation_range": [[2.0, 6.0]]}
BUDGET = dict(task="static_arithmetic", budget="quick", steps=POINTS * 1000, batch_size=128,
              lr=5e-3, eval_interval=1000, schedule_scale=0.004)
ENV = {"versions": {"python": "3.12.0", "numpy": "2.0.0"},
       "machine": {"platform": "Linux-synthetic", "processor": "x86_64", "cpus": 2,
                   "node": "bench"}}


def synthetic(n: int, seed: int = 0) -> list[dict]:
    """n records over the default matrix x both frameworks: mostly ok, some diverged,
    a few error/skipped, each finished one with a POINTS-step curve and a magnitude curve."""
    rng = np.random.default_rng(seed)
    configs = [(op, m, fw) for op, models in DEFAULT_MATRIX.items() for m in models
               for fw in ("torch", "tf")]
    steps, starts = list(range(0, POINTS * 1000, 1000)), np.linspace(1, 11, 12).tolist()
    records = []
    for i in range(n):
        op, model, fw = configs[i % len(configs)]
        spec = RunSpec.make({**PARAMS, "op": op}, unit=model, framework=fw,
                            seed=i // len(configs), **BUDGET)
        status = rng.choice(["ok", "diverged", "error", "skipped"], p=[0.9, 0.06, 0.02, 0.02])
        rec = {"id": spec.id, **spec.to_dict(), "status": str(status),
               "reason": {"diverged": "non-finite error at step 3000", "error": "RuntimeError: x",
                          "skipped": "tensorflow is not installed"}.get(status, ""),
               **ENV, "wall_seconds": 60.0 + i // 256}
        if status in ("ok", "diverged"):
            decay = np.exp(-np.arange(POINTS) * rng.uniform(0.1, 1.0))
            interp = (decay * 10 + 1e-7).tolist()
            extrap = (decay * 100 + rng.uniform(1e-6, 1.0)).tolist()
            if status == "diverged":
                interp[5:], extrap[5:] = [float("nan")] * (POINTS - 5), [None] * (POINTS - 5)
            best = int(np.nanargmin(np.array(interp, dtype=float)))
            success = status == "ok" and extrap[best] < 1e-3
            mag = (np.array(starts) ** 2 * extrap[best]).tolist()
            rec |= {"metrics": {
                "interpolation_mse": interp[best], "extrapolation_mse": extrap[best],
                "interpolation_normalised": 1.0, "extrapolation_normalised": 1.0,
                "threshold": 1e-3, "success": bool(success),
                "solved_at": steps[best] if success else None, "selected_step": steps[best],
                "sparsity_error": float(rng.uniform(0, 0.5)),
                "magnitude_curve": {"start": starts, "width": 1.0,
                                    "mse": mag if status == "ok" else [None] * len(starts)}},
                "curve": {"step": steps, "interpolation": interp, "extrapolation": extrap},
                "group_size": 256, "train_seconds": 50.0, "seed_steps_per_s": 1e5,
                "samples_per_s": 1.28e7, "python": "3.12.0"}
        records.append(rec)
    return records


def write(records: list[dict], directory) -> None:
    """One JSON file per record, as benchmarks.store writes them (indent 1, NaN allowed)."""
    directory.mkdir(parents=True, exist_ok=True)
    for rec in records:
        (directory / f"{rec['id']}.json").write_text(json.dumps(rec, indent=1, allow_nan=True))


def build(results, out):
    """What `python -m benchmarks report` does."""
    df, curves = frame.read(results)
    return html.render(df, out, curves=curves)


def test_report_10000_records(benchmark, tmp_path):
    write(synthetic(RECORDS), tmp_path / "results")
    out = benchmark.pedantic(build, args=(tmp_path / "results", tmp_path / "report.html"),
                             rounds=1, iterations=1)
    benchmark.extra_info.update(records=RECORDS, curve_points=POINTS, target_seconds=10,
                                html_bytes=out.stat().st_size)
    text = out.read_text()  # scoreboard, success, learning curves, magnitude, frameworks
    assert text.count("<img ") == 6 and "Protocol differs" in text and "://" not in text
