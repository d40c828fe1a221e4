"""The recurrent arithmetic data against its protocol: shapes,
ranges, lengths, targets, the model grammar and the success bar."""
import numpy as np
import pytest

from models import registry
from tasks.base import ReplicaBatches, TaskError
from tasks.recurrent_arithmetic import RecurrentArithmetic, parse_model


def test_protocol_defaults_and_eval_sets():
    task = RecurrentArithmetic()
    p = task.params
    assert (p["input_size"], p["train_length"], p["op"]) == (10, 10, "add")
    assert task.lengths == {"interpolation": 10, "length_100": 100, "length_1000": 1000}
    sets = task.eval_inputs()
    assert list(sets) == ["interpolation", "length_100", "length_1000"]
    for name, x in sets.items():
        assert x.shape == (p["eval_size"], task.lengths[name], 10)
        assert x.dtype == np.float32
        assert 1.0 <= x.min() and x.max() < 2.0
    again = task.eval_inputs()  # fixed: the same for every seed and every call
    np.testing.assert_array_equal(again["length_100"], sets["length_100"])
    assert not np.array_equal(sets["length_100"][:, :10], sets["interpolation"])


def test_training_data_shapes_ranges_and_targets():
    task = RecurrentArithmetic(op="mul", interpolation_range=(-2.0, -1.0))
    insts = [task.instance(s) for s in (0, 1)]
    xs, ys = ReplicaBatches(task, insts, [0, 1], batch_size=16)(3)
    assert xs.shape == (3, 2, 16, 10, 10) and ys.shape == (3, 2, 16, 1)
    assert -2.0 <= xs.min() and xs.max() < -1.0
    for r, inst in enumerate(insts):
        x = xs[:, r].astype(np.float64)
        a = x[..., inst.a].sum(axis=(-2, -1))  # summed over time and the subset
        b = x[..., inst.b].sum(axis=(-2, -1))
        np.testing.assert_allclose(ys[:, r, :, 0], a * b, rtol=1e-5)


def test_subsets_are_the_static_tasks_and_fixed_per_seed():
    task = RecurrentArithmetic()
    sizes = {(len(range(10)[i.a]), len(range(10)[i.b])) for i in map(task.instance, range(30))}
    assert sizes == {(2, 2)}  # 0.25 of 10, rounded as the static task does
    inst = task.instance(4)
    assert inst == task.instance(4)
    assert len(set(range(10)[inst.a]) & set(range(10)[inst.b])) == 1  # overlap 0.5
    assert len({task.instance(s).a.start for s in range(30)}) > 3


@pytest.mark.parametrize("op,fn", [("add", np.add), ("sub", np.subtract),
                                   ("div", np.divide)])
def test_ops_and_eval_targets_in_float64(op, fn):
    task = RecurrentArithmetic(op=op, test_lengths=(50,), eval_size=7)
    inst = task.instance(2)
    x = task.eval_inputs()["length_50"]
    a = x.astype(np.float64)[..., inst.a].sum(axis=(-2, -1))
    b = x.astype(np.float64)[..., inst.b].sum(axis=(-2, -1))
    got = task.eval_targets(inst, x)
    assert got.dtype == np.float64 and got.shape == (7, 1)
    np.testing.assert_allclose(got[:, 0], fn(a, b), rtol=1e-12)


def test_success_bar_is_the_static_bar_on_the_summed_sequence():
    task = RecurrentArithmetic(test_lengths=(1000,), eval_size=50)
    inst = task.instance(0)
    x = task.eval_inputs()["length_1000"]
    bar = task.threshold(inst, x)
    e = 1e-5 * x.astype(np.float64).sum(axis=(-2, -1))
    assert bar == pytest.approx(np.mean((2 * e) ** 2), rel=1e-9)  # a+b, both off by e
    # the exact answer in float32, accumulated step by step, is well inside the bar
    h = np.zeros((50, 2), np.float32)
    w = np.zeros((10, 2), np.float32)
    w[inst.a, 0] = 1
    w[inst.b, 1] = 1
    for t in range(1000):
        h = h + x[:, t] @ w
    assert np.mean((h.sum(-1) - task.eval_targets(inst, x)[:, 0]) ** 2) < bar / 100


def test_model_grammar():
    assert parse_model("nau-nmu") == ("nau", "nmu")
    assert parse_model("nau") == ("nau", "nau")
    assert parse_model("lstm") == ("lstm", "linear")
    assert parse_model("rnn_relu-nac") == ("rnn_relu", "nac")
    task = RecurrentArithmetic()
    assert task.layers(("nau", "nmu")) == [("nau", 10, 2), ("nmu", 2, 1)]
    assert task.layers(("lstm", "linear")) == [("lstm", 10, 2), ("linear", 2, 1)]
    with pytest.raises(registry.UnknownName, match="'relu6' is feed-forward only"):
        task.check_model("relu6-linear")
    with pytest.raises(registry.UnknownName, match="unknown output unit 'foo'.*known: linear"):
        task.check_model("lstm-foo")
    with pytest.raises(registry.UnknownName, match="bad model 'a-b-c'.*CELL-UNIT"):
        task.check_model("a-b-c")
    for model in RecurrentArithmetic.default_models:
        task.check_model(model)


@pytest.mark.parametrize("params,match", [
    ({"op": "pow"}, "unknown op 'pow'"),
    ({"test_lengths": (0, 100)}, "bad test_lengths"),
    ({"test_lengths": "long"}, "bad test_lengths"),
    ({"train_length": 0}, "bad train_length 0"),
    ({"hidden_size": 1.5}, "bad hidden_size"),
    ({"interpolation_range": (2.0, 1.0)}, "low must be below high"),
    ({"input_size": 3, "subset_ratio": 0.9}, "cannot hold two subsets"),
])
def test_bad_parameters_are_refused(params, match):
    with pytest.raises(TaskError, match=match):
        RecurrentArithmetic(**params)


def test_defaults_per_op_and_budgets():
    assert RecurrentArithmetic.defaults({}, "quick") == [
        ({"op": "add"}, ("lstm", "rnn_relu", "nac", "nalu", "nau"))]
    ops = [fixed["op"] for fixed, _ in RecurrentArithmetic.defaults({"op": ["mul"]}, "quick")]
    assert ops == ["mul"]
    assert set(RecurrentArithmetic.budgets) == {"smoke", "quick", "paper"}
    t = RecurrentArithmetic(test_lengths=1000)
    assert t.params["test_lengths"] == (1000,)
