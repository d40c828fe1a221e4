"""The throughput yardstick: its units compute the reference's math, and its loop trains."""
from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks import plain_loop  # noqa: E402
from models import reference  # noqa: E402


@pytest.mark.parametrize("module, unit, keys", [
    (plain_loop.Nalu, "nalu", {"w_hat": "W_hat", "m_hat": "M_hat", "gate": "G"}),
    (plain_loop.Nau, "nau", {"w": "W"}),
    (plain_loop.Nmu, "nmu", {"w": "W"}),
])
def test_units_compute_the_reference(module, unit, keys):
    rng = np.random.default_rng(0)
    layer = module(5, 3).double()
    params = {}
    with torch.no_grad():
        for name, key in keys.items():
            value = rng.uniform(-1.5, 1.5, size=(5, 3))
            getattr(layer, name).copy_(torch.from_numpy(value))
            params[key] = value
    x = rng.uniform(0.5, 3.0, size=(7, 5))
    with torch.no_grad():
        mine = layer(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(mine, reference.forward(unit, params, x), rtol=1e-12)


def test_the_loop_learns_the_task():
    """1,000 steps of NAU -> NMU on a * b bring the interpolation error far below that of
    answering 0 (the mean squared target)."""
    gen = torch.Generator().manual_seed(1)
    _, y = plain_loop.draw(gen, 0, "mul", 10_000, 1.0, 2.0)
    interpolation, extrapolation = plain_loop.train_seed(0, "nau-nmu", "mul", 1000)
    assert np.isfinite(extrapolation)
    assert interpolation < 0.01 * float(y.pow(2).mean())


def test_main_prints_the_rate_and_refuses_a_bad_count(capsys):
    plain_loop.main(["--unit", "nau-nmu", "--steps", "3", "--seeds", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["seed 0", "seed 1"]
    assert float(re.fullmatch(r"seed_steps_per_s=([0-9.]+)", lines[-1]).group(1)) > 0
    with pytest.raises(SystemExit) as exit_:
        plain_loop.main(["--seeds", "0"])
    assert exit_.value.code == 2
    assert "--seeds must be at least 1" in capsys.readouterr().err
