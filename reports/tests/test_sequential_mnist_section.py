"""Sequential MNIST's report section and its fidelity verdicts, from records shaped as the
runner writes them (scored by the task's own metrics against given thresholds)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from benchmarks.records import RunSpec
from reports import frame, html, published
from reports.sections import sequential_mnist as section
from tasks.sequential_mnist import SequentialMNIST

LENGTHS = (1, 10, 100)


def _records(unit, framework, steps, successes, rz, runs=10, simplification="none",
             operation="sum", lengths=LENGTHS):
    task = SequentialMNIST(source="sklearn", test_lengths=lengths, operation=operation,
                           thresholds=[1.0] * len(lengths), regulariser_z=rz,
                           simplification=simplification)
    out = []
    for seed in range(runs):
        off = 0.0 if seed < successes else 2.0  # MSE 0 (below the thresholds) or 4
        preds = {L: y + off for L, (_, y) in task.eval_sets.items()}
        spec = RunSpec.make(task.params, task=task.name, unit=unit, framework=framework,
                            seed=seed, budget="paper", steps=steps, batch_size=64, lr=1e-3,
                            eval_interval=430, schedule_scale=1.0)
        out.append({"id": spec.id, **spec.to_dict(), "status": "ok", "reason": "",
                    "metrics": task.metrics(SimpleNamespace(
                        best=preds, selected_step=steps, diverged=False, extra={})),
                    "curve": {"step": [0, steps], "validation": [9.0, off ** 2],
                              "interpolation": [9.0, off ** 2], "extrapolation": [9.0, off]},
                    "group_size": runs, "train_seconds": 1.0, "wall_seconds": 2.0,
                    "seed_steps_per_s": 100.0, "samples_per_s": 6400.0,
                    "versions": {"python": "3.12", "numpy": "2", framework: "1"},
                    "machine": {}})
    return out


@pytest.fixture(scope="module")
def runs():
    records = [*_records("nau", "torch", 86_086, 8, 1.0),  # [NAU]: 0.75 of 10
               *_records("lstm", "torch", 86_086, 0, 0.0),  # [NAU]: 0
               *_records("nau", "tf", 200, 0, 1.0),  # lower, and far fewer steps
               *_records("lstm", "tf", 86_086, 10, 0.0),  # higher: differs at any budget
               *_records("nau", "torch", 200, 0, 0.0, runs=3,
                         simplification="solved-accumulator")]  # a reference: not compared
    return frame.frame(records), frame.curves(records)


def test_fidelity_verdicts_against_the_published_readings(runs):
    df, _ = runs
    fid = section.fidelity(df)
    tested = fid[fid["runs"].notna()]
    verdict = {(r.model, r.framework): r.verdict for r in tested.itertuples()}
    assert verdict == {("NAU (R_z)", "torch"): published.AGREES,
                       ("NAU (R_z)", "tf"): published.SHORT,
                       ("LSTM", "torch"): published.AGREES,
                       ("LSTM", "tf"): published.DIFFERS}
    nau = tested[tested["framework"].eq("torch") & tested["unit"].eq("nau")].iloc[0]
    assert (nau.length, nau.successes, nau.runs) == (100, 8, 10)  # the longest in 1-1000
    # the NAC+ rows (R_z 0 and 1) and the product rows hold no run; NAC* is no cell here
    rest = fid[fid["runs"].isna()]
    assert set(rest["verdict"]) == {published.NOT_RUN, published.NOT_IN_SUITE}
    assert rest.loc[rest["model"].eq("NAC*"), "verdict"].item() == published.NOT_IN_SUITE


def test_section_draws_success_against_length_and_renders(runs, tmp_path):
    df, curves = runs
    assert section.lengths(df) == list(LENGTHS)
    table = section.per_length(df)
    nau = table[table["unit"].eq("nau") & table["framework"].eq("torch")]
    assert list(nau["length"]) == list(LENGTHS) and set(nau["success"]) == {0.8}
    assert len(table) == 4 * len(LENGTHS)  # the reference runs are the bar, not a model
    # a product run counts at its own lengths only, not as a failure at the sum's
    prod = _records("nmu", "torch", 200, 2, 1.0, runs=2, operation="prod", lengths=(2, 5))
    both = section.per_length(frame.frame([*_records("nau", "torch", 200, 1, 1.0, runs=2),
                                           *prod]))
    assert set(zip(both["param_operation"], both["length"])) == \
        {("sum", 1), ("sum", 10), ("sum", 100), ("prod", 2), ("prod", 5)}
    assert set(both.loc[both["param_operation"].eq("prod"), "success"]) == {1.0}
    out = section.section("sequential_mnist", df, curves)
    assert any(f["id"] == "sequential-mnist-lengths" for f in out["figures"])
    assert out["fidelity"]["counts"] == [(published.AGREES, 2), (published.DIFFERS, 1),
                                         (published.SHORT, 1)]
    assert "200 / 86,086" in out["fidelity"]["note"]
    page = html.render(df, tmp_path / "report.html", curves=curves).read_text()
    assert "sequential MNIST success rates" in page and "success L=100" in page
    assert "Every static cell" not in page  # the static task's introduction stays its own


@pytest.mark.parametrize("operation, records, steps, verdicts, headline", [
    ("sum", 69, 2002, {"NAU (R_z)": "agrees", "NAC+,R_z": "agrees", "NAC+": "agrees",
                       "LSTM": "agrees", "NALU": "agrees"}, ("NAU (R_z)", 6)),
    ("prod", 50, 8008, {"NMU (R_z)": "agrees", "LSTM": "differs", "NALU": "differs"},
     ("NMU (R_z)", 10)),
])
def test_shipped_paper_baselines_read_with_their_verdicts(operation, records, steps,
                                                          verdicts, headline):
    """reports/baselines/sequential_mnist_{sum,prod}.parquet: the paper-budget runs on the
    offline digits (docs/results.md), read as `report` reads them, with their fidelity."""
    from pathlib import Path

    path = (Path(__file__).resolve().parents[1] / "baselines"
            / f"sequential_mnist_{operation}.parquet")
    df = frame.load(path)
    assert len(df) == records and set(df["status"]) == {"ok"}
    assert set(df["framework"]) == {"tf"} and set(df["param_operation"]) == {operation}
    scored = section.scored(df)
    assert len(scored) == records - (9 if operation == "sum" else 10)
    assert set(scored["steps"]) == {steps}
    fid = section.fidelity(df)
    tested = fid[fid["runs"].notna()]
    assert dict(zip(tested["model"], tested["verdict"])) == verdicts
    model, successes = headline
    cell = tested[tested["model"] == model].iloc[0]
    assert (cell["successes"], cell["runs"]) == (successes, 10)
