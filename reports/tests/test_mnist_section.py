"""The digit-sequence tasks' report section, from records shaped as the runner writes them."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from benchmarks.records import RunSpec
from reports import frame, html
from reports.sections import mnist_addition, mnist_counting
from tasks.mnist_counting import MNISTCounting


def _records():
    task = MNISTCounting(source="sklearn", test_sequences=20)
    truth = {L: y for L, (_, y) in task.eval_sets.items()}
    out = []
    for unit, fw, scale in (("nau", "torch", 1.0), ("nau", "tf", 1.0), ("lstm", "torch", 0.0)):
        spec = RunSpec.make(task.params, task=task.name, unit=unit, framework=fw, seed=0,
                            budget="quick", steps=100, batch_size=16, lr=1e-2, eval_interval=50,
                            schedule_scale=1.0)
        preds = {L: y * scale + (L == 10) * (1 - scale) * y for L, y in truth.items()}
        out.append({"id": spec.id, **spec.to_dict(), "status": "ok", "reason": "",
                    "metrics": task.metrics(SimpleNamespace(
                        best=preds, selected_step=100, diverged=False, extra={},
                        errors={"interpolation": [1.0, 0.5, 0.1],
                                "extrapolation": [9.0, 5.0, 1.0]})),
                    "curve": {"step": [0, 50, 100], "interpolation": [1.0, 0.5, 0.1],
                              "extrapolation": [9.0, 5.0, 1.0]},
                    "group_size": 1, "train_seconds": 1.0, "wall_seconds": 2.0,
                    "seed_steps_per_s": 100.0, "samples_per_s": 1600.0,
                    "versions": {"python": "3.12", "numpy": "2", fw: "1"}, "machine": {}})
    return out


def test_section_per_length_and_source(tmp_path):
    records = _records()
    df, curves = frame.read_records(records) if hasattr(frame, "read_records") else (
        frame.frame(records), frame.curves(records))
    assert mnist_counting.lengths(df) == [10, 100, 1000]
    out = mnist_counting.section("mnist_counting", df, curves)
    assert out["fixed"]["digits"] == ("sklearn (8x8) from sklearn.datasets.load_digits: "
                                      "1,257 train / 540 test images")
    table = out["tables"][-1]
    assert table["columns"][:3] == ["unit", "framework", "runs"]
    assert "accuracy L=1000" in table["columns"] and "MAE L=100" in table["columns"]
    rows = {(r[0], r[1]): r for r in table["rows"]}
    at = table["columns"].index("accuracy L=1000")
    assert rows[("nau", "torch")][at] == "100%" and rows[("lstm", "torch")][at] == "0%"
    assert len(out["figures"]) >= 2
    assert mnist_addition.section is mnist_counting.section
    page = html.render(df, tmp_path / "report.html", curves=curves).read_text()
    assert "accuracy L=100" in page and "1,257 train / 540 test" in page
    assert np.isfinite(df["accuracy_1000"]).all()
