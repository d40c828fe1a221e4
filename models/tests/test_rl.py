"""The actor-critic agents: both frameworks against the numpy reference on shared weights,
the same update in both, n-step returns, and a short training run that beats chance."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks import runner, suite
from models import actor_critic as ac
from models import registry

FRAMEWORKS = [f for f in registry.FRAMEWORKS if registry.framework_missing(f) is None]
MODELS = list(ac.UNITS)


def _obs(rng, batch):
    d = rng.integers(-4, 5, size=(batch, 2))
    return np.concatenate([d, rng.integers(1, 41, size=(batch, 1))], 1).astype(np.float32)


def _agent(fw, params, unit, **kw):
    args = dict(lr=1e-3, entropy=0.01, value_coef=0.5, max_grad_norm=1.0) | kw
    return registry.framework_module(fw, "rl").Agent(params, unit, **args)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_agent_step_matches_reference(fw, model):
    params = ac.init_agent(model, seed=3, hidden=8, arith=3, n_actions=5)
    params = {k: v.astype(np.float32).astype(np.float64) for k, v in params.items()}
    unit = ac.core_unit(model)
    agent = _agent(fw, params, unit)
    rng = np.random.default_rng(0)
    state = ref_state = agent.zero_state(6)
    assert [s.shape for s in state] == [s.shape for s in ac.zero_state(params, 6)]
    for _ in range(5):
        obs = _obs(rng, 6)
        logits, value, state = agent.act(obs, state)
        want_logits, want_value, ref_state = ac.reference_step(params, unit, obs, ref_state)
        np.testing.assert_allclose(logits, want_logits, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(value, want_value, rtol=1e-4, atol=1e-5)
        for got, want in zip(state, ref_state):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    for k, v in agent.params().items():  # parameters come back under the numpy names
        np.testing.assert_allclose(v, params[k], rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(len(FRAMEWORKS) < 2, reason="needs both frameworks")
@pytest.mark.parametrize("model", ["lstm", "lstm+nac", "lstm+nau"])
def test_one_update_is_the_same_in_both_frameworks(model):
    params = ac.init_agent(model, seed=1, hidden=8, arith=3, n_actions=5)
    unit = ac.core_unit(model)
    rng = np.random.default_rng(2)
    n, B = 4, 16
    obs = np.stack([_obs(rng, B) for _ in range(n)])
    actions = rng.integers(0, 5, size=(n, B))
    returns = rng.uniform(-1, 1, size=(n, B)).astype(np.float32)
    masks = (rng.random((n, B)) > 0.2).astype(np.float32)
    state = tuple(rng.normal(size=s.shape).astype(np.float32) * 0.3
                  for s in ac.zero_state(params, B))
    losses, deltas = {}, {}
    for fw in FRAMEWORKS:
        agent = _agent(fw, params, unit)
        losses[fw] = agent.update(obs, actions, returns, masks, state)
        after = agent.params()
        deltas[fw] = np.concatenate([(after[k] - params[k]).ravel() for k in sorted(params)])
    for key in ("loss", "policy", "value", "entropy"):
        assert losses["torch"][key] == pytest.approx(losses["tf"][key], rel=1e-4, abs=1e-6)
    # Adam's first step is lr * sign(gradient) in torch; Keras puts epsilon before the bias
    # correction, which shrinks steps of tiny gradients: compare the directions
    a, b = deltas["torch"], deltas["tf"]
    big = (np.abs(a) > 5e-4) & (np.abs(b) > 5e-4)
    assert big.mean() > 0.5 and np.all(np.sign(a[big]) == np.sign(b[big]))
    assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.9


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
