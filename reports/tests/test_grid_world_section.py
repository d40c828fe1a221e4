"""The grid-world report section: per-T success flattened, its table and figures rendered."""
from __future__ import annotations

import numpy as np

from benchmarks.records import RunSpec
from benchmarks.store import Store
from reports import frame, html
from reports.sections import grid_world as section
from tasks.grid_world import GridWorld


def _record(unit, framework, seed, rate):
    task = GridWorld()
    spec = RunSpec.make(task.params, task="grid_world", unit=unit, framework=framework,
                        seed=seed, budget="quick", steps=500, batch_size=256, lr=3e-3,
                        eval_interval=250, schedule_scale=1.0)
    T = list(range(1, 41))
    curve = {"T": T, "success": rate, "reward": rate, "early": [0.0] * 40}
    return {"id": spec.id, **spec.to_dict(), "status": "ok", "reason": "",
            "metrics": {**task.headline(curve), "random_success": 0.02},
            "curve": {"step": [0, 250, 500], "interpolation": [1.0, 0.5, 0.1],
                      "extrapolation": [1.0, 1.0, 0.9]},
            "versions": {"python": "3.11", "numpy": "2", framework: "1"},
            "machine": {"node": "test"}, "group_size": 2, "train_seconds": 1.0,
            "wall_seconds": 2.0, "seed_steps_per_s": 100.0, "samples_per_s": 1e4}


def test_section_shows_success_by_T(tmp_path):
    store = Store(tmp_path)
    counting = [1.0] * 25 + [0.2] * 15  # holds its timing up to T = 25
    lost = [1.0] * 10 + [0.0] * 30
    for fw in ("torch", "tf"):
        for seed in (0, 1):
            store.write(_record("lstm+nac", fw, seed, counting))
            store.write(_record("lstm", fw, seed, lost))
    df, curves = frame.read(tmp_path)
    long = section.by_T(df)
    assert len(long) == 8 * 40 and set(long["unit"]) == {"lstm", "lstm+nac"}
    assert np.isclose(long[(long["unit"] == "lstm") & (long["T"] == 11)]["success"].max(), 0)
    out = section.section("grid_world", df, curves)
    table = out["tables"][0]
    rows = {(r[0], r[1]): r for r in table["rows"]}
    assert rows[("lstm+nac", "torch")][5] == "15" and rows[("lstm", "tf")][5] == "0"
    assert len(out["figures"]) >= 3
    page = html.render(df, tmp_path / "report.html", curves=curves).read_text()
    assert "task-grid_world" in page and "success on training T (mean)" in page
