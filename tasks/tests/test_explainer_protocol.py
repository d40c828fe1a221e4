"""The static task's ``protocol=explainer``: its data, validation and budget."""
import numpy as np
import pytest

from benchmarks import suite
from tasks.base import TaskError
from tasks.static_arithmetic import (
    EXPLAINER_L2,
    EXPLAINER_OPS,
    EXPLAINER_PARAMS,
    OPS,
    StaticArithmetic,
)


def explainer(op="add", **kw):
    return StaticArithmetic(op=op, protocol="explainer", **{**EXPLAINER_PARAMS, **kw})


def test_subsets_are_the_first_four_and_last_six_for_every_seed():
    task = explainer()
    for seed in (0, 1, 17):
        inst = task.instance(seed)
        assert (inst.a, inst.b) == (slice(0, 4), slice(4, 10))
    x = np.arange(10.0)[None]
    a, b = task.ab(task.instance(0), x)
    assert a[0] == 0 + 1 + 2 + 3 and b[0] == 4 + 5 + 6 + 7 + 8 + 9


def test_evaluation_sets_are_10000_from_0_10_and_0_100():
    sets = explainer().eval_inputs()
    for name, high in (("interpolation", 10.0), ("extrapolation", 100.0)):
        x = sets[name]
        assert x.shape == (10_000, 10)
        assert x.min() >= 0.0 and x.max() < high
        assert x.mean() == pytest.approx(high / 2, rel=0.01)  # uniform over the range
    # the test set does not depend on the seed or the op
    np.testing.assert_array_equal(sets["extrapolation"],
                                  explainer("mul").eval_inputs()["extrapolation"])


@pytest.mark.parametrize("op", EXPLAINER_OPS)
def test_fixed_training_set_is_drawn_once_per_seed(op):
    task = explainer(op)
    inst = task.instance(3)
    x, y = task.train_set(inst, 3, 10_000)
    x2, y2 = task.train_set(inst, 3, 10_000)
    np.testing.assert_array_equal(x, x2)  # the same set on every call
    np.testing.assert_array_equal(y, y2)
    assert x.shape == (10_000, 10) and y.shape == (10_000, 1)
    assert x.dtype == y.dtype == np.float32
    assert x.min() >= 0.0 and x.max() < 10.0
    a, b = x[:, :4].astype(np.float64).sum(1), x[:, 4:].astype(np.float64).sum(1)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(y[:, 0], OPS[op](a, b), rtol=1e-5, atol=1e-4)  # float32 sums
    other, _ = task.train_set(task.instance(4), 4, 10_000)
    assert not np.array_equal(x, other)  # each seed its own set


def test_training_set_is_the_seeds_first_suite_batch():
    """The set is the first batch the suite's batches draw from the seed's data stream."""
    from tasks.base import ReplicaBatches

    task = explainer()
    inst = task.instance(5)
    xs, ys = ReplicaBatches(task, [inst], [5], 10_000)(1)
    x, y = task.train_set(inst, 5, 10_000)
    np.testing.assert_array_equal(xs[0, 0], x)
    np.testing.assert_array_equal(ys[0, 0], y)


def test_success_bar_is_the_explainers_l2_figure():
    task = explainer()
    x = task.eval_inputs()["extrapolation"]
    bar = task.threshold(task.instance(0), x)
    assert 0.5 * len(x) * bar == pytest.approx(EXPLAINER_L2)


def test_protocol_refuses_other_settings():
    with pytest.raises(TaskError, match="input_size=100"):
        explainer(input_size=100)
    with pytest.raises(TaskError, match="interpolation_range"):
        explainer(interpolation_range=(1.0, 2.0))
    with pytest.raises(TaskError, match="reinit off"):
        explainer(reinit="on")
    explainer("root")  # sqrt over [0, 10): a >= 0, allowed under this protocol
    with pytest.raises(TaskError, match="positive"):
        StaticArithmetic(op="root", interpolation_range=(0.0, 1.0))


def test_budget_runs_nalu_on_the_six_functions_as_one_program():
    specs = suite.expand(["static_arithmetic"], None, ["torch", "tf"], [0, 1],
                         suite.get_budget("explainer"))
    assert sorted({s.params["op"] for s in specs}) == sorted(EXPLAINER_OPS)
    assert {s.unit for s in specs} == {"nalu"}
    assert {(s.steps, s.batch_size, s.lr, s.eval_interval) for s in specs} == {
        (50_000, 10_000, 0.1, 1_000)}
    assert all(s.params["protocol"] == "explainer" for s in specs)
    groups = suite.groups(specs)
    assert len(groups) == 2 and all(len(g) == 12 for g in groups)  # one per framework


def test_default_protocol_record_ids_unchanged():
    """Ids of records written before protocol explainer existed."""
    specs = suite.expand(["static_arithmetic"], ["nalu"], ["torch", "tf"], [0, 1],
                         suite.get_budget("quick"), {"op": ["add"]})
    assert [s.id for s in specs] == ["650f79b0d6a051cfc500", "c2c9b0f523360208ec10",
                                     "e983e78cafc21dfcf698", "a7a0586ab4ce2e481213"]
    primer = suite.expand(["static_arithmetic"], None, ["torch"], [0],
                          suite.get_budget("primer"), {"op": ["mul"]})
    assert primer[0].id == "a8963827d54a565bbd69"
