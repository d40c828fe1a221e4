"""The static arithmetic data against its protocol ([NAU]; docs/tasks.md)."""
import numpy as np
import pytest

from tasks.base import DATA_STREAM, ReplicaBatches, TaskError, map_ranges, random32, sample_ranges
from tasks.static_arithmetic import StaticArithmetic


def test_protocol_defaults_and_subsets():
    task = StaticArithmetic()
    assert task.params["input_size"] == 100
    assert (task.subset_size, task.overlap, task.span) == (25, 12, 38)
    for seed in range(50):
        inst = task.instance(seed)
        a, b = range(100)[inst.a], range(100)[inst.b]
        assert len(a) == len(b) == 25
        assert len(set(a) & set(b)) == 12
        assert b.start == a.start + 13 and 0 <= a.start <= 62
    offsets = {task.instance(s).a.start for s in range(50)}
    assert len(offsets) > 10  # the offset is drawn per seed
    assert task.instance(7) == task.instance(7)


def test_targets_are_subset_sums_fixed_across_samples():
    task = StaticArithmetic(op="mul")
    inst = task.instance(3)
    x = task.train_inputs(np.random.default_rng(0), (2, 64))
    a = x[..., inst.a].astype(np.float64).sum(-1)
    b = x[..., inst.b].astype(np.float64).sum(-1)
    np.testing.assert_allclose(task.targets(inst, x)[..., 0], a * b, rtol=1e-5)
    # another sample with the same instance uses the same subsets
    x2 = task.train_inputs(np.random.default_rng(1), (1, 8))
    np.testing.assert_allclose(task.targets(inst, x2)[..., 0],
                               x2[..., inst.a].sum(-1) * x2[..., inst.b].sum(-1), rtol=1e-6)


@pytest.mark.parametrize("op,fn", [("add", np.add), ("sub", np.subtract),
                                   ("div", np.divide), ("squared", lambda a, b: a * a),
                                   ("root", lambda a, b: np.sqrt(a))])
def test_each_op(op, fn):
    task = StaticArithmetic(op=op)
    inst = task.instance(0)
    x = task.train_inputs(np.random.default_rng(0), (10,))
    a, b = task.ab(inst, x)
    np.testing.assert_allclose(task.targets(inst, x)[..., 0], fn(a, b), rtol=1e-6)


def test_ranges_of_training_and_evaluation_sets():
    task = StaticArithmetic()
    x = task.train_inputs(np.random.default_rng(0), (50, 128))
    assert x.shape == (50, 128, 100) and x.min() >= 1 and x.max() <= 2
    evals = task.eval_inputs()
    assert list(evals) == ["interpolation", "extrapolation"]
    assert evals["interpolation"].shape == (10_000, 100)
    assert 1 <= evals["interpolation"].min() and evals["interpolation"].max() <= 2
    assert 2 <= evals["extrapolation"].min() and evals["extrapolation"].max() <= 6
    # fixed: the same arrays every time, whatever the run's seed
    np.testing.assert_array_equal(evals["extrapolation"], task.eval_inputs()["extrapolation"])


@pytest.mark.parametrize("bits", [np.random.PCG64, np.random.MT19937])
def test_random32_is_numpys_float32_draw_bit_for_bit(bits):
    fast, plain = np.random.Generator(bits(5)), np.random.Generator(bits(5))
    slots = np.zeros((3, 4, 7, 10), dtype=np.float32)
    # odd counts leave half of a 64-bit output for the next draw: numpy's path takes it
    for shape, scale, offset in [((6, 10), 1.0, 1.0), ((7,), 4.0, -6.0), ((3, 10), 0.37, 0.1),
                                 ((7, 10), 2.5, 2.0), ((1,), 1.0, 0.0), ((5, 4), 3.0, -1.0)]:
        expected = plain.random(shape, dtype=np.float32)
        expected *= np.float32(scale)
        expected += np.float32(offset)
        np.testing.assert_array_equal(random32(fast, scale, offset, np.empty(shape, np.float32)),
                                      expected)
    expected = plain.random((3, 7, 10), dtype=np.float32) * np.float32(2) + np.float32(1)
    random32(fast, 2.0, 1.0, slots[:, 1])  # into a strided slot of a larger buffer
    np.testing.assert_array_equal(slots[:, 1], expected)
    assert not slots[:, [0, 2, 3]].any()


def test_union_range_covers_both_intervals_uniformly():
    x = sample_ranges(np.random.default_rng(0), (200_000,), ((-6, -2), (2, 6)))
    assert ((x >= -6) & (x <= -2) | (x >= 2) & (x <= 6)).all()
    assert abs((x < 0).mean() - 0.5) < 0.01
    assert abs(np.mean((x > 3) & (x < 4)) - 0.125) < 0.01


def test_primer_single_module_variant():
    task = StaticArithmetic(input_size=2, op="div", interpolation_range=(-2, 2),
                            extrapolation_range=((-6, -2), (2, 6)))
    assert task.single_module
    assert task.layers(("nau", "nmu")) == [("nmu", 2, 1)]
    x = np.array([[3.0, 4.0]])
    np.testing.assert_allclose(task.targets(task.instance(0), x), [[0.75]])


def test_threshold_is_the_eps_perturbed_solution():
    task = StaticArithmetic(op="sub")
    inst = task.instance(0)
    x = task.eval_inputs()["extrapolation"].astype(np.float64)
    e = 1e-5 * x.sum(-1)
    # a - b cancels a shared perturbation; the opposite-sign one does not
    assert task.threshold(inst, x) == pytest.approx(np.mean((2 * e) ** 2))
    assert 0 < StaticArithmetic(op="add").threshold(inst, x) < 1e-3


@pytest.mark.parametrize("op,extrapolation,published", [
    # [Primer]'s formula at eps 1e-5 on 10^6 samples (docs/primer-protocol.md's table)
    ("add", (-40, -20), 3.67e-07), ("sub", (20, 40), 3.67e-07), ("mul", (-40, -20), 3.48e-04),
    ("mul", ((-6, -2), (2, 6)), 1.20e-07), ("div", (0.2, 2.0), 1.48e-09),
    ("div", (1.2, 6), 8.25e-10)])
def test_primer_threshold_is_its_perturbed_solution(op, extrapolation, published):
    task = StaticArithmetic(input_size=2, op=op, extrapolation_range=extrapolation,
                            protocol="primer")
    x = task.eval_inputs()["extrapolation"]
    assert task.threshold(task.instance(0), x) == pytest.approx(published, rel=0.01)
    suite = StaticArithmetic(input_size=2, op=op, extrapolation_range=extrapolation)
    assert suite.threshold(suite.instance(0), x) > 2 * published  # the suite's is looser
    if op in ("add", "sub"):  # closed form: eps^2 E[(|x0| + |x1|)^2], x0, x1 iid uniform
        lo, hi = sorted(np.abs(extrapolation))
        second, first = (lo * lo + lo * hi + hi * hi) / 3, (lo + hi) / 2
        assert task.threshold(None, x) == pytest.approx(1e-10 * (2 * second + 2 * first ** 2),
                                                       rel=0.005)


def test_protocol_is_left_out_of_the_spec_by_default_and_checked():
    assert "protocol" not in StaticArithmetic().params
    assert StaticArithmetic().protocol == "suite"
    assert StaticArithmetic(input_size=2, protocol="primer").params["protocol"] == "primer"
    with pytest.raises(TaskError, match="unknown protocol 'nalu'; known: suite, primer"):
        StaticArithmetic(protocol="nalu")
    with pytest.raises(TaskError, match="input_size=2 and op one of add, sub, mul, div"):
        StaticArithmetic(protocol="primer")
    with pytest.raises(TaskError, match="op='squared'"):
        StaticArithmetic(input_size=2, op="squared", protocol="primer")
    with pytest.raises(TaskError, match="leave reinit off"):
        StaticArithmetic(input_size=2, protocol="primer", reinit="on")


def test_replica_streams_do_not_depend_on_the_group():
    task = StaticArithmetic(input_size=10)
    seeds = [0, 1, 2, 3]
    group = ReplicaBatches(task, [task.instance(s) for s in seeds], seeds, 16)
    alone = ReplicaBatches(task, [task.instance(2)], [2], 16)
    xg = np.concatenate([group(3)[0], group(5)[0]])  # chunk sizes differ on purpose
    xa = np.concatenate([alone(7)[0], alone(1)[0]])
    np.testing.assert_array_equal(xg[:, 2], xa[:, 0])
    # each replica's inputs are numpy's own float32 draws from its seed's data stream
    mine = np.random.default_rng([2, DATA_STREAM]).random((8, 16, 10), dtype=np.float32)
    np.testing.assert_array_equal(xg[:, 2], mine * np.float32(1) + np.float32(1))
    common = ReplicaBatches(task, [task.instance(s) for s in seeds], seeds, 16, common_data=True)
    x, y = common(2)
    assert x.shape == (2, 1, 16, 10) and y.shape == (2, 4, 16, 1)


@pytest.mark.parametrize("params,message", [
    ({"op": "pow"}, "unknown op 'pow'"),
    ({"interpolation_range": (2, 1)}, "low must be below high"),
    ({"op": "root", "interpolation_range": (-2, 2)}, "needs positive inputs"),
    ({"input_size": 20, "subset_ratio": 0.9}, "cannot hold two subsets"),
    ({"colour": "red"}, "unknown parameter"),
    ({"extrapolation_range": "wide"}, "bad extrapolation_range"),
    ({"interpolation_range": (1e30, 1e38)}, r"interpolation_range \[1e\+30,1e\+38\].* 5e\+39"),
    # 25 inputs summed (input_size 100, subset 0.25) up to 1e18: a + b reaches 5e19
    ({"extrapolation_range": (1e17, 1e18)}, "extrapolation_range.*reaches targets of 5e"),
    ({"input_size": 2, "op": "mul", "interpolation_range": (1e9, 1e10)}, "reaches.* 1e\\+20"),
    ({"input_size": 2, "op": "div", "interpolation_range": (1e-30, 1e-5)}, "1e\\+25"),
])
def test_bad_parameters_name_the_value(params, message):
    with pytest.raises(TaskError, match=message):
        StaticArithmetic(**params)


@pytest.mark.parametrize("params", [
    {"input_size": 2, "op": "mul", "interpolation_range": (1e8, 1e9)},  # 1e18 < 1.84e19
    {"input_size": 2, "op": "div", "interpolation_range": (-1, 1)},  # near-zero b: allowed
    {"extrapolation_range": (1e16, 1e17)},  # 25 x 1e17 summed, 5e18
])
def test_ranges_whose_targets_fit_float32_are_accepted(params):
    StaticArithmetic(**params)


def test_consecutive_chunks_do_not_overwrite_each_other():
    task = StaticArithmetic(input_size=10)
    batches = ReplicaBatches(task, [task.instance(0)], [0], 16)
    first = batches(4)
    keep = first[0].copy()
    second = batches(4)  # made while the first chunk trains: must not touch it
    np.testing.assert_array_equal(first[0], keep)
    assert not np.shares_memory(first[0], second[0])


@pytest.mark.parametrize("ranges", [[(1.0, 2.0)], [(-20.0, -10.0)], [(0.1, 0.2)],
                                    [(-6.0, -2.0), (2.0, 6.0)]])
def test_inputs_mapped_from_one_draw_are_the_drawn_inputs_bit_for_bit(ranges):
    """A seed's uniforms drawn once and mapped to a range pair give what sampling that
    range from the seed's stream gives (`map_ranges`, `ReplicaBatches`)."""
    drawn = sample_ranges(np.random.default_rng([7, 2]), (64, 128, 2), ranges)
    u = random32(np.random.default_rng([7, 2]), 1.0, 0.0, np.empty((64, 128, 2), np.float32))
    mapped = map_ranges(u, ranges, np.empty_like(u))
    assert mapped.tobytes() == drawn.tobytes()


def test_replica_batches_draw_each_seed_once_with_the_numbers_of_its_own_stream():
    pairs = [((1.0, 2.0), (2.0, 6.0)), ((-20.0, -10.0), (-40.0, -20.0))]
    tasks_ = [StaticArithmetic(op=op, input_size=2, interpolation_range=i, extrapolation_range=e)
              for op in ("add", "div") for i, e in pairs]
    seeds = [0, 1]
    replicas = [(t, s) for t in tasks_ for s in seeds]
    shared = ReplicaBatches([t for t, _ in replicas], [t.instance(s) for t, s in replicas],
                            [s for _, s in replicas], batch_size=16)
    xs, ys = shared(5)
    for k, (t, s) in enumerate(replicas):
        alone = ReplicaBatches(t, [t.instance(s)], [s], batch_size=16)
        x, y = alone(5)
        assert xs[:, k].tobytes() == x[:, 0].tobytes() and ys[:, k].tobytes() == y[:, 0].tobytes()
    assert not np.array_equal(xs[:, 0], xs[:, 2])  # the two range pairs


def test_normalised_error_is_percent_of_the_untrained_error():
    from tasks.base import normalised

    assert normalised(2.5, 2.5) == 100.0 and normalised(0.0, 2.5) == 0.0
    assert normalised(5.0, 2.5) == 200.0  # worse than before training
    for err, untrained in ((1.0, 0.0), (np.inf, 1.0), (1.0, np.nan), (None, 1.0)):
        assert np.isnan(normalised(err, untrained))
