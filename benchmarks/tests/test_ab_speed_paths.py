"""The speed-path A/B drives the trainer it patches: every arm runs through the current
Trainer signature and reports its ratio to the first arm."""
import pytest

from benchmarks import ab_speed_paths
from models import registry


@pytest.mark.skipif(registry.framework_missing("torch") is not None, reason="needs torch")
def test_every_arm_runs_and_reports_its_ratio(capsys):
    pairs, steps, seeds = "1", "20", "4"
    assert ab_speed_paths.main(["nalu", "A,public_adam,no_shortcuts", pairs, steps, seeds]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "nalu own A", "nalu own public_adam", "nalu own no_shortcuts"]
    medians = [float(line.split("median ")[1].split(",")[0]) for line in lines]
    ratios = [float(line.rsplit(" ", 1)[1]) for line in lines]
    for median, ratio in zip(medians, ratios, strict=True):  # each arm over the first arm
        assert ratio == pytest.approx(median / medians[0], rel=0.02, abs=2e-3)
