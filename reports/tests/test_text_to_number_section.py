"""The text-to-number report section: MAE per split per output layer x language x
framework, [NALU]'s claim beside it, in the rendered page."""
import numpy as np

from reports import frame, html
from reports.sections import text_to_number as section


def _records():
    out = []
    for lang in ("en", "de"):
        for unit, base in (("linear", 10.0), ("nalu", 100.0)):
            for fw in ("torch", "tf"):
                for seed in range(3):
                    mae = base + seed
                    metrics = {f"mae_{s}": mae * (1 + i) for i, s in enumerate(section.SPLITS)}
                    metrics.update(accuracy_test=0.1, accuracy_extrapolation=0.0, success=False,
                                   interpolation_mse=mae ** 2, extrapolation_mse=(5 * mae) ** 2)
                    out.append({"id": f"{lang}{unit}{fw}{seed}", "task": "text_to_number",
                                "task_params": {"language": lang}, "unit": unit,
                                "framework": fw, "seed": seed, "budget": "quick",
                                "steps": 600, "lr": 0.01, "batch_size": 64, "status": "ok",
                                "metrics": metrics,
                                "curve": {"step": [0, 100], "validation": [9e4, mae ** 2]}})
    return out


def test_mae_table_and_claim():
    df = frame.frame(_records())
    table = section.mae_table(df)
    assert table["columns"][:4] == ["output layer", "language", "framework", "runs"]
    assert len(table["rows"]) == 8
    row = table["rows"][0]  # linear, de, tf: medians over 3 seeds (10, 11, 12)
    assert row[:4] == ["linear", "de", "tf", 3] and row[4] == "11" and row[6] == "33"
    claim = section.claim(df)
    nalu = [r for r in claim["rows"] if r[2] == "nalu"][0]
    assert nalu[3] == "404" and nalu[4] == "44" and nalu[5] == "9.18"
    assert "far below" in nalu[-1] and "interpolation" in claim["note"]


def test_section_renders(tmp_path):
    records = _records()
    df, curves = frame.frame(records), frame.curves(records)
    out = section.section("text_to_number", df, curves)
    assert out["comparison"]["rows"] and out["figures"][0]["uri"].startswith("data:image/png")
    page = html.render(df, tmp_path / "report.html", curves=curves).read_text()
    assert "MAE interpolation (median)" in page and "far below Linear" in page
    assert np.isfinite(df["mae_test"]).all()
