"""The recurrent loop (models/sequence.py and the per-framework trainers): R seeds trained
as one program give each seed its one-seed numbers; a diverging replica is recorded and
leaves the others alone; torch and tf train the same numbers from the same start."""
import numpy as np
import pytest

from benchmarks import runner, suite
from models import registry

FRAMEWORKS = [pytest.param(fw, marks=pytest.mark.skipif(
    registry.framework_missing(fw) is not None, reason=f"{fw} not installed"))
    for fw in registry.FRAMEWORKS]
TINY = suite.Budget("tiny", steps=40, eval_interval=20, seeds=3, description="tests", lr=1e-2)
PARAMS = {"op": ["add"], "test_lengths": [(30,)], "eval_size": [64]}


def _records(framework, model, seeds, common_data=False, budget=TINY):
    specs = suite.expand(["recurrent_arithmetic"], [model], [framework], seeds, budget, PARAMS,
                         common_data=common_data)
    records = runner.run_group(specs)
    assert {r["status"] for r in records} <= {"ok", "diverged"}, records[0].get("traceback")
    return {r["seed"]: r for r in records}


def _curve(record):
    return np.array([record["curve"][k] for k in ("interpolation", "length_30")])


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("model", ["nau-nmu", "lstm", "mclstm"])
def test_replica_matches_one_seed_run(framework, model):
    group = _records(framework, model, [0, 1, 2])
    alone = _records(framework, model, [1])
    np.testing.assert_allclose(_curve(group[1]), _curve(alone[1]), rtol=1e-4, atol=1e-6)
    assert group[1]["metrics"]["selected_step"] == alone[1]["metrics"]["selected_step"]
    assert group[1]["curve"]["step"] == [0, 20, 40]
    assert not np.allclose(_curve(group[0]), _curve(group[1]))  # really different runs
    metrics = group[1]["metrics"]
    assert metrics["extrapolation_mse"] == metrics["mse_30"]
    assert metrics["interpolation_mse"] == metrics["mse_10"]
    assert metrics["success"] == metrics["success_30"]
    assert metrics["headline_length"] == 30


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_common_data_replica_matches_one_seed_run(framework):
    group = _records(framework, "nau", [0, 1], common_data=True)
    alone = _records(framework, "nau", [1], common_data=True)
    np.testing.assert_allclose(_curve(group[1]), _curve(alone[1]), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_diverging_replica_leaves_the_others_alone(framework, monkeypatch):
    healthy = _records(framework, "rnn_relu", [0, 2])
    original = registry.init_cell_params

    def explosive(cell, n_in, hidden, seeds):
        params = original(cell, n_in, hidden, seeds)
        for r, key in enumerate(seeds):
            if key[0] == 1:  # seed 1: weights so large that the squared error overflows
                params["W"][r] = 1e19
        return params

    monkeypatch.setattr(registry, "init_cell_params", explosive)
    group = _records(framework, "rnn_relu", [0, 1, 2])
    assert group[1]["status"] == "diverged"
    assert "non-finite interpolation error" in group[1]["reason"]
    assert group[1]["metrics"]["success"] is False
    for seed in (0, 2):
        assert group[seed]["status"] == "ok"
        np.testing.assert_allclose(_curve(group[seed]), _curve(healthy[seed]), rtol=1e-4)


@pytest.mark.parametrize("model", ["nau", "mclstm"])
def test_torch_and_tf_train_the_same_numbers(model):
    """Same start, same numbers; for MC-LSTM this covers its end-of-sequence marker in
    torch's loop and in tf's unrolled (training) and looped (evaluation) ones."""
    if any(registry.framework_missing(fw) for fw in registry.FRAMEWORKS):
        pytest.skip("needs both frameworks")
    torch_run = _records("torch", model, [0])
    tf_run = _records("tf", model, [0])
    np.testing.assert_allclose(_curve(torch_run[0]), _curve(tf_run[0]), rtol=1e-3)


def test_overflow_at_a_long_length_is_a_failure_not_a_divergence(monkeypatch):
    """An output that overflows (to NaN) only on the long sequences is recorded as an infinite
    error there; the replica is still `ok` (it trained) and not a success."""
    from models import sequence

    fw = next((fw for fw in registry.FRAMEWORKS if not registry.framework_missing(fw)), None)
    if fw is None:
        pytest.skip("no framework")
    original = sequence.engine.fit

    def fit(trainer, *args, **kwargs):
        real = trainer.errors

        def errors(x, y, chunk=2000):
            out = real(x, y, chunk)
            return np.full_like(out, np.nan) if x.shape[1] > 10 else out  # overflowed: inf - inf
        trainer.errors = errors
        return original(trainer, *args, **kwargs)

    monkeypatch.setattr(sequence.engine, "fit", fit)
    rec = _records(fw, "nau", [0])[0]
    assert rec["status"] == "ok"
    assert rec["metrics"]["extrapolation_mse"] == np.inf
    assert rec["metrics"]["success"] is False
    assert np.isfinite(rec["metrics"]["interpolation_mse"])


def test_mclstm_reads_the_end_marker_in_the_loop():
    """The recurrent loop inits MC-LSTM with one auxiliary input and each framework's
    evaluation equals the numpy reference on the marked sequence (the fork's network)."""
    from models import reference

    x = np.random.default_rng(0).uniform(1, 2, size=(6, 12, 10)).astype(np.float32)
    cell = registry.init_cell_params("mclstm", 10, 2, [3, 4],
                                     **dict(reference.CELLS["mclstm"].sequence_options))
    out = registry.init_params("linear", 2, 1, [5, 6])
    want = reference.forward("linear", out, reference.cell_run(
        "mclstm", cell, reference.end_marker(x.astype(np.float64))))
    y = np.zeros((2, 6, 1))
    for fw in registry.FRAMEWORKS:
        if registry.framework_missing(fw):
            continue
        trainer = registry.framework_module(fw, "sequence").Trainer(
            ("mclstm", cell), ("linear", out), lr=1e-2, length=10)
        np.testing.assert_allclose(trainer.errors(x, y), (want ** 2).mean(axis=(-2, -1)),
                                   rtol=1e-5, err_msg=fw)
