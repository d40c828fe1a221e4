"""The speed-path A/B drives the trainer it patches: every arm runs through the current
Trainer signature and reports its ratio to the first arm."""
import pytest

from benchmarks import ab_speed_paths
from models import registry


@pytest.mark.skipif(registry.framework_missing("torch") is not None, reason="needs torch")
def test_every_arm_runs_and_reports_its_ratio(capsys):
    assert ab_speed_paths.main(["nalu", "A,public_adam,no_shortcuts", "1", "20"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "nalu own A", "nalu own public_adam", "nalu own no_shortcuts"]
    ratios = [float(line.rsplit(" ", 1)[1]) for line in lines]
    assert ratios[0] == 1.0 and all(r > 0 for r in ratios)
