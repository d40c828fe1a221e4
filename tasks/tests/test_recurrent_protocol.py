"""Recurrent arithmetic's protocol mclstm against the MC-LSTM fork's definitions
(docs/recurrent-protocol.md): data, subsets, hidden sizes, the sparsity ramp, the export
script's selection and success rule, and the default protocol's record ids."""
import numpy as np
import pytest

from benchmarks import suite
from models import engine
from tasks import recurrent_arithmetic as ra
from tasks.base import TaskError
from tasks.recurrent_arithmetic import RecurrentArithmetic


def test_protocol_data_is_the_forks():
    task = RecurrentArithmetic(protocol="mclstm", op="add")
    p = task.params
    assert (p["input_size"], p["train_length"], p["eval_size"]) == (10, 10, 1000)
    # validation at 2x, test at 10x the training length, range test at the training length
    assert task.lengths == {"interpolation": 10, "length_20": 20, "length_100": 100,
                            "range": 10}
    sets = task.eval_inputs()
    for name, x in sets.items():
        assert x.shape == (1000, task.lengths[name], 10)
        low, high = (2.0, 6.0) if name == "range" else (1.0, 2.0)
        assert low <= x.min() and x.max() < high
        assert x.max() > high - 0.01  # the whole range is drawn
    # subset_ratio 0.25 of 10 -> floor 2 inputs, overlap floor(0.5 * 2) = 1, offset 0..7
    offsets = set()
    for seed in range(200):
        inst = task.instance(seed)
        assert inst.a.stop - inst.a.start == 2 and inst.b.stop - inst.b.start == 2
        assert inst.b.start == inst.a.stop - 1
        offsets.add(inst.a.start)
    assert offsets == set(range(8))
    x = sets["length_20"][:3].astype(np.float64)
    inst = task.instance(3)
    want = x[..., inst.a].sum((-1, -2)) + x[..., inst.b].sum((-1, -2))
    np.testing.assert_allclose(task.eval_targets(inst, x)[:, 0], want, rtol=1e-12)


def test_protocol_fixes_its_parameters():
    task = RecurrentArithmetic(protocol="mclstm", extrapolation_range=(2.0, 6.0),
                               test_lengths=(20, 100))
    assert task.params["extrapolation_range"] == ((2.0, 6.0),)
    for bad in ({"test_lengths": (100, 1000, 5)}, {"input_size": 100}, {"hidden_size": 3},
                {"op": "div"}, {"protocol": "nalu"}):
        with pytest.raises(TaskError):
            RecurrentArithmetic(**{"protocol": "mclstm", **bad})


def test_protocol_hidden_sizes_per_model_and_op():
    def hidden(model, op):
        task = RecurrentArithmetic(protocol="mclstm", op=op)
        return task.layers(task.parse(model))[0][2]

    assert hidden("lstm", "add") == 2 and hidden("lstm", "sub") == 10
    assert hidden("lstm", "mul") == 10 and hidden("mclstm", "add") == 2
    assert hidden("mclstm", "sub") == 3 and hidden("nau", "sub") == 2
    assert hidden("nau-nmu", "mul") == 2
    assert RecurrentArithmetic().layers(("lstm", "linear"))[0][2] == 2  # suite unchanged


def test_sparsity_ramp_values():
    steps = np.array([0, 999_999, 1_000_000, 1_250_000, 1_500_000, 2_000_000, 3_000_000])
    np.testing.assert_allclose(ra.sparsity_ramp(steps), [0, 0, 0, 2.5, 5, 10, 10])
    np.testing.assert_allclose(ra.sparsity_ramp([1000, 1250, 2000], scale=1e-3), [0, 2.5, 10])


def test_protocol_regulariser_weights_at_the_budget():
    assert ra.SUITE_SCHEDULE_STEPS == suite.PAPER_STEPS
    budget = suite.get_budget("mclstm")
    task = RecurrentArithmetic(protocol="mclstm", op="mul")
    cfg = engine.TrainConfig(steps=budget.steps, schedule_scale=budget.schedule_scale)
    steps = np.array([0, 1_000_000, 1_500_000, 2_000_000])
    lams = task.regulariser_weights(["nau", "nmu"], cfg, steps)
    np.testing.assert_allclose(lams, [[0, 0], [0, 0], [5, 5], [10, 10]])
    # classic cells and NAC/NALU carry no sparsity penalty
    assert not task.regulariser_weights(["linear", "nac"], cfg, steps).any()
    # the default protocol leaves the units' own schedules (engine.regulariser_weights)
    assert RecurrentArithmetic().regulariser_weights(["nau", "nau"], cfg, steps) is None


def test_export_selection_on_hand_made_curves():
    # lowest among the last best_range evaluations, NaN ignored
    assert ra.export_selection([5.0, 3.0, np.nan, 1.0, 2.0]) == 3
    assert ra.export_selection([0.1, 3.0, 2.0, 4.0], best_range=3) == 2  # step 0 excluded
    assert ra.export_selection([np.nan, np.nan, np.nan]) == 2  # all NaN: the last
    assert ra.export_selection([np.inf, np.nan, 7.0]) == 2
    assert ra.export_selection(np.r_[0.0, np.full(2000, 1.0)]) == 1  # 2001 evaluations


class _Seed:
    """A hand-made fit: curves per evaluation set, as engine.SeedFit gives them."""

    def __init__(self, errors, units=("lstm", "linear")):
        self.errors = {k: np.asarray(v, dtype=float) for k, v in errors.items()}
        self.steps = np.arange(len(errors["interpolation"])) * 1000
        self.units, self.best_index, self.best = list(units), 0, None


def test_success_rule_on_hand_made_curves():
    task = RecurrentArithmetic(protocol="mclstm", op="add")
    bar = ra.protocol_threshold("add")
    curves = {"interpolation": [9.0, 1.0, 0.5, 0.7], "length_20": [9, 9, 9, 9],
              "length_100": [9.0, bar / 2, bar * 2, bar / 3], "range": [9, 9, bar / 2, 9]}
    m = task.metrics(_Seed(curves))
    # selected at the lowest interpolation error (step 2000), where length 100 misses the bar
    assert m["selected_step"] == 2000 and m["success"] is False
    assert m["range_success"] is True  # the range test, with the same bar
    assert m["solved_at"] == 1000  # first evaluation under the bar at length 100
    assert m["extrapolation_mse"] == bar * 2 and m["threshold"] == bar
    curves["interpolation"] = [9.0, 1.0, np.nan, 1.5]  # NaN ignored: 1000 is selected
    m = task.metrics(_Seed(curves))
    assert m["selected_step"] == 1000 and m["success"] is True
    curves["length_100"] = [9.0, np.nan, 9.0, 9.0]  # NaN at the selection: a failure
    assert task.metrics(_Seed(curves))["success"] is False


def test_threshold_matches_the_scripts_expectation():
    """The bar is the MSE of the eps-perturbed recurrent solution; for add its leading
    term has a closed form: the recurrent decay (1 - eps)^(T - t) loses eps (T - t) of
    step t's sum over the script's 3 + 3 inputs, the input weights add eps per input."""
    T, eps, rng = 100, 1e-5, np.random.default_rng(0)
    x = rng.uniform(1, 2, size=(20000, T, 10))
    uses = np.r_[1, 1, 2, 1, 1, 0, 0, 0, 0, 0]  # subsets x[0:3] and x[2:5] holding input i
    w_err = eps * (2 - 2 * uses)  # per input, both columns: -eps where used, +eps where not
    decay = -eps * (T - 1 - np.arange(T))[:, None] * uses
    approx = np.mean((x * (w_err + decay)).sum((1, 2)) ** 2)
    assert ra.protocol_threshold("add") == pytest.approx(approx, rel=0.02)
    assert ra.protocol_threshold("add") == pytest.approx(0.188, rel=0.02)
    assert ra.protocol_threshold("sub") < 1e-3 < ra.protocol_threshold("mul")


def test_mclstm_budget_matrix_and_lrs():
    specs = suite.expand(["recurrent_arithmetic"], None, ["torch"], [0],
                         suite.get_budget("mclstm"))
    got = {(s.params["op"], s.unit): s.lr for s in specs}
    assert got == {("add", "mclstm"): 1e-2, ("add", "lstm"): 1e-2, ("add", "nau"): 1e-3,
                   ("add", "nac"): 1e-3, ("add", "nalu"): 1e-3,
                   ("sub", "mclstm"): 1e-2, ("sub", "lstm"): 1e-2, ("sub", "nau"): 1e-3,
                   ("sub", "nac"): 1e-3, ("sub", "nalu"): 1e-3,
                   ("mul", "lstm"): 1e-2, ("mul", "nau-nmu"): 1e-3,
                   ("mul", "nac-nacmul"): 1e-3, ("mul", "nalu"): 1e-3}
    s = specs[0]
    assert (s.steps, s.eval_interval, s.batch_size, s.params["protocol"]) == (
        2_000_000, 1000, 128, "mclstm")
    assert suite.get_budget("mclstm").seeds == 100
    with pytest.raises(suite.SuiteError):
        suite.expand(["static_arithmetic"], None, ["torch"], [0], suite.get_budget("mclstm"))


def test_default_protocol_keeps_record_ids():
    """Ids computed with the code before protocol existed: the default leaves no trace."""
    for budget, ids in (("smoke", ["e4a36696fcf529d63250", "670f613ee6a60639af6c",
                                   "97a68c00a61928644547", "41cca87612d58d935f32"]),
                        ("quick", ["ceaa8d2a759bc5cd9129", "2fcee4dda587fc18fd83",
                                   "840821b7d75402a5ac75", "8e24cb734d9a5738d792"])):
        specs = suite.expand(["recurrent_arithmetic"], ["lstm", "nau-nmu"], ["torch"],
                             [0, 7], suite.get_budget(budget))
        assert [s.id for s in specs] == ids
        assert all("protocol" not in s.params for s in specs)
    assert "protocol" not in RecurrentArithmetic(protocol="suite").params
