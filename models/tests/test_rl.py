"""The actor-critic agents: both frameworks against the numpy reference on shared weights,
the same update in both, n-step returns, and a short training run that beats chance."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks import runner, suite
from benchmarks.tests.test_resume import comparable
from models import actor_critic as ac
from models import registry

FRAMEWORKS = [f for f in registry.FRAMEWORKS if registry.framework_missing(f) is None]
MODELS = list(ac.UNITS)


def _obs(rng, *shape):
    d = rng.integers(-4, 5, size=(*shape, 2))
    return np.concatenate([d, rng.integers(1, 41, size=(*shape, 1))], -1).astype(np.float32)


def _params(model, seeds, **kw):
    """Each seed's `init_agent` stacked along a new replica axis 0, as the loop builds it."""
    kw = {"hidden": 8, "arith": 3, "n_actions": 5} | kw
    per_seed = [ac.init_agent(model, seed=s, **kw) for s in seeds]
    return {k: np.stack([p[k] for p in per_seed]) for k in per_seed[0]}


def _agent(fw, params, unit, **kw):
    args = dict(lr=1e-3, entropy=0.01, value_coef=0.5, max_grad_norm=1.0) | kw
    return registry.framework_module(fw, "rl").Agent(params, unit, **args)


def _rollout(rng, params, n=4, B=16):
    """A random rollout (R, n, B, ...) and a start state (R, B, ...) for agents of
    ``params``."""
    replicas = len(params["pi_W"])
    zeros = ac.zero_state({k: v[0] for k, v in params.items()}, B)
    return (_obs(rng, replicas, n, B), rng.integers(0, 5, size=(replicas, n, B)),
            rng.uniform(-1, 1, size=(replicas, n, B)).astype(np.float32),
            (rng.random((replicas, n, B)) > 0.2).astype(np.float32),
            tuple(rng.normal(size=(replicas, *s.shape)).astype(np.float32) * 0.3
                  for s in zeros))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_agent_step_matches_reference(fw, model):
    """Replica r of a three-replica agent steps as `reference_step` on seed r's weights."""
    seeds = [3, 4, 5]
    params = {k: v.astype(np.float32).astype(np.float64)
              for k, v in _params(model, seeds).items()}
    unit = ac.core_unit(model)
    agent = _agent(fw, params, unit)
    rng = np.random.default_rng(0)
    state = agent.zero_state(6)
    one = {k: v[0] for k, v in params.items()}
    assert [s.shape for s in state] == [(3, *s.shape) for s in ac.zero_state(one, 6)]
    ref_states = [ac.zero_state(one, 6) for _ in seeds]
    for _ in range(5):
        obs = _obs(rng, 3, 6)
        logits, value, state = agent.act(obs, state)
        for r in range(len(seeds)):
            mine = {k: v[r] for k, v in params.items()}
            want_logits, want_value, ref_states[r] = ac.reference_step(mine, unit, obs[r],
                                                                       ref_states[r])
            np.testing.assert_allclose(logits[r], want_logits, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(value[r], want_value, rtol=1e-4, atol=1e-5)
            for got, want in zip(state, ref_states[r]):
                np.testing.assert_allclose(got[r], want, rtol=1e-4, atol=1e-4)
    for k, v in agent.params().items():  # parameters come back under the numpy names
        np.testing.assert_allclose(v, params[k], rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(len(FRAMEWORKS) < 2, reason="needs both frameworks")
@pytest.mark.parametrize("model", ["lstm", "lstm+nac", "lstm+nau"])
def test_one_update_is_the_same_in_both_frameworks(model):
    """Two replicas: each one's losses and its update agree between torch and tf."""
    params = _params(model, [1, 2])
    unit = ac.core_unit(model)
    rollout = _rollout(np.random.default_rng(2), params)
    losses, deltas = {}, {}
    for fw in FRAMEWORKS:
        agent = _agent(fw, params, unit)
        losses[fw] = agent.update(*rollout)
        after = agent.params()
        deltas[fw] = [np.concatenate([(after[k][r] - params[k][r]).ravel()
                                      for k in sorted(params)]) for r in range(2)]
    for key in ("loss", "policy", "value", "entropy"):
        assert losses["torch"][key].shape == (2,)
        np.testing.assert_allclose(losses["torch"][key], losses["tf"][key], rtol=1e-4,
                                   atol=1e-6)
    # Adam's first step is lr * sign(gradient) in torch; Keras puts epsilon before the bias
    # correction, which shrinks steps of tiny gradients: compare the directions
    for a, b in zip(deltas["torch"], deltas["tf"]):
        big = (np.abs(a) > 5e-4) & (np.abs(b) > 5e-4)
        assert big.mean() > 0.5 and np.all(np.sign(a[big]) == np.sign(b[big]))
        assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.9


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_a_replica_steps_and_updates_as_alone(fw, model):
    """Replica 1 of a four-replica agent acts and updates as that seed's agent alone, bit
    for bit, over updates: every op that rounds is per replica. Batch 1000: n B is not a
    power of two, so 1 / (n B) rounds, and large enough that tf's graph optimiser folds a
    constant loss coefficient into it differently with R (models/tf/rl.py); a multiple
    of 8, as every replica's activations must fill whole SIMD blocks (the module
    docstring of models/actor_critic.py)."""
    seeds = [0, 1, 2, 3]
    params = _params(model, seeds, hidden=32, arith=4)
    unit = ac.core_unit(model)
    group, alone = _agent(fw, params, unit, lr=3e-3), _agent(
        fw, {k: v[1:2] for k, v in params.items()}, unit, lr=3e-3)
    rng = np.random.default_rng(0)
    for _ in range(6):
        obs, actions, returns, masks, state = _rollout(rng, params, n=8, B=1000)
        one = lambda a: a[1:2]  # noqa: E731
        got = group.act(obs[:, 0], state)
        want = alone.act(one(obs[:, 0]), tuple(map(one, state)))
        for a, b in zip([*got[:2], *got[2]], [*want[:2], *want[2]]):
            np.testing.assert_array_equal(one(a), b)
        got = group.update(obs, actions, returns, masks, state)
        want = alone.update(one(obs), one(actions), one(returns), one(masks),
                            tuple(map(one, state)))
        for key in got:
            np.testing.assert_array_equal(one(got[key]), want[key])
    mine, solo = group.params(), alone.params()
    for key in mine:
        np.testing.assert_array_equal(one(mine[key]), solo[key], err_msg=key)
    assert not np.array_equal(mine["pi_W"][0], mine["pi_W"][1])  # the replicas differ


def test_n_step_returns_bootstrap_and_cut_at_episode_ends():
    rewards = np.array([[0, 0], [1, 0], [0, 0]], np.float32)
    dones = np.array([[0, 0], [1, 0], [0, 0]], np.float32)
    got = ac.n_step_returns(rewards, dones, np.array([10.0, 2.0]), gamma=0.5)
    np.testing.assert_allclose(got[:, 0], [0.5, 1.0, 5.0])
    np.testing.assert_allclose(got[:, 1], [0.25, 0.5, 1.0])


def test_sampling_follows_the_probabilities():
    probs = np.tile([[0.1, 0.0, 0.6, 0.3, 0.0]], (20000, 1))
    counts = np.bincount(ac.sample(probs, np.random.default_rng(0)), minlength=5) / 20000
    np.testing.assert_allclose(counts, probs[0], atol=0.015)


def test_unknown_core_is_named():
    with pytest.raises(registry.UnknownName, match="unknown agent core 'gru'.*lstm\\+nac"):
        ac.core_unit("gru")


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_short_training_beats_a_random_policy(fw):
    """120 updates on T in 1..4: the greedy agent wins far more often than chance (what it
    learns first is to walk to the target, which wins whenever T equals the distance)."""
    budget = suite.BUDGETS["smoke"]
    specs = suite.expand(["grid_world"], ["lstm"], [fw], [0], budget,
                         {"train_T": [(1, 4)], "test_T": [(1, 8)], "eval_episodes": [16]},
                         steps=120)
    record, = runner.run_group(specs)
    assert record["status"] == "ok", record.get("traceback")
    m = record["metrics"]
    assert m["train_success"] > m["random_success"] + 0.3, m
    assert record["curve"]["interpolation"][-1] < record["curve"]["interpolation"][0]


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_same_seed_same_run(fw):
    """Weights, environments and sampled actions all come from the seed: a rerun is identical."""
    specs = suite.expand(["grid_world"], ["lstm+nac"], [fw], [3], suite.BUDGETS["smoke"],
                         {"test_T": [(1, 12)], "eval_episodes": [8]}, steps=20)
    first, second = runner.run_group(specs)[0], runner.run_group(specs)[0]
    assert first["status"] == "ok", first.get("traceback")
    assert first["metrics"] == second["metrics"] and first["curve"] == second["curve"]


TINY = suite.Budget("tiny", steps=60, eval_interval=20, seeds=3, description="tests", lr=3e-3)
GRID = {"eval_episodes": [2], "test_T": [(1, 20)]}
EVALUATE = ac.evaluate


def _program(fw, model, seeds, monkeypatch, progress=None):
    """The records of one program of ``seeds`` by seed, and its agent's final parameters
    per seed (from the last evaluation)."""
    specs = suite.expand(["grid_world"], [model], [fw], seeds, TINY, GRID)
    [group] = suite.groups(specs)
    final = {}

    def spy(agent, task):
        final.update({s: {k: v[r] for k, v in agent.params().items()}
                      for r, s in enumerate(seeds)})
        return EVALUATE(agent, task)

    monkeypatch.setattr(ac, "evaluate", spy)
    return {r["seed"]: r for r in runner.run_group(group, progress=progress)}, final


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_a_seed_in_a_program_is_the_seed_alone(fw, model, monkeypatch):
    """A seed's record from a program of three is its record alone (R = 1), bit for bit,
    and so are its final weights: its weights, environments and actions are its own, and
    every op of the agents rounds a replica as it rounds one alone."""
    group, group_params = _program(fw, model, [0, 1, 2], monkeypatch)
    alone, alone_params = _program(fw, model, [1], monkeypatch)
    assert group[1]["status"] == "ok", group[1].get("traceback") or group[1]["reason"]
    assert comparable(group[1]) == comparable(alone[1])
    for key, value in alone_params[1].items():
        np.testing.assert_array_equal(group_params[1][key], value, err_msg=key)
    assert not np.array_equal(group_params[0]["pi_W"], group_params[1]["pi_W"])


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_a_diverging_replica_leaves_the_others_alone(fw, monkeypatch):
    """Seed 1 starts with weights whose policy overflows: it is marked diverged at the first
    update and its curve stops there, while seeds 0 and 2 train as they do without it, bit
    for bit; a program whose replicas all diverge (seeds 1 and 3) stops early with its
    steps reported."""
    healthy, _ = _program(fw, "lstm+nac", [0, 2], monkeypatch)
    init = ac.init_agent

    def explosive(model, seed, *args, **kw):
        params = init(model, seed, *args, **kw)
        if seed in (1, 3):
            params["pi_W"][:] = 1e38
        return params

    monkeypatch.setattr(ac, "init_agent", explosive)
    group, _ = _program(fw, "lstm+nac", [0, 1, 2], monkeypatch)
    bad = group[1]
    assert bad["status"] == "diverged", bad.get("traceback")
    assert bad["reason"] == "non-finite loss or policy at step 1"
    assert bad["curve"]["step"] == [0] and bad["metrics"]["success"] is False
    assert np.isnan(bad["metrics"]["interpolation_mse"])
    for seed in (0, 2):
        assert comparable(group[seed]) == comparable(healthy[seed])
    done = []
    records, _ = _program(fw, "lstm+nac", [1, 3], monkeypatch, progress=done.append)
    assert [r["status"] for r in records.values()] == ["diverged", "diverged"]
    assert done == [2, 2 * (TINY.steps - 1)]  # one update, then the rest at once
