"""The grid-world timing environment: its rules, Gymnasium's checker, seeding, batching."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from models import registry
from tasks.base import TaskError
from tasks.grid_world import ENV_ID, BatchedGridTiming, GridTiming, GridWorld

STAY, UP, DOWN, LEFT, RIGHT = range(5)

AVAILABLE = [f for f in registry.FRAMEWORKS if registry.framework_missing(f) is None]


def _env_at(agent, target, T, size=5) -> GridTiming:
    env = GridTiming(size=size)
    env.reset(seed=0)
    env.agent, env.target, env.T, env.t = np.array(agent), np.array(target), T, 0
    return env


def test_registered_and_passes_check_env():
    env = gym.make(ENV_ID)
    assert isinstance(env.unwrapped, GridTiming)
    check_env(env.unwrapped, skip_render_check=False)
    check_env(GridTiming(size=3, t_range=(2, 4), max_T=50))


def test_reward_exactly_at_T():
    env = _env_at((0, 0), (0, 1), T=3)
    for _ in range(2):  # wait next to the target
        obs, reward, terminated, truncated, info = env.step(STAY)
        assert (reward, terminated, truncated) == (0.0, False, False)
    obs, reward, terminated, truncated, info = env.step(RIGHT)
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["t"] == 3 and obs.tolist() == [0.0, 0.0, 3.0]


def test_early_arrival_ends_without_reward():
    env = _env_at((0, 0), (0, 1), T=3)
    _, reward, terminated, _, info = env.step(RIGHT)
    assert (reward, terminated, info["t"]) == (0.0, True, 1)


def test_time_up_ends_without_reward():
    env = _env_at((0, 0), (2, 2), T=2)
    assert env.step(STAY)[2] is False
    _, reward, terminated, truncated, _ = env.step(DOWN)
    assert (reward, terminated, truncated) == (0.0, True, False)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(STAY)


def test_moves_stay_inside_the_grid():
    env = _env_at((0, 0), (4, 4), T=20)
    for action in (UP, LEFT):
        obs, *_ = env.step(action)
        assert env.agent.tolist() == [0, 0] and obs.tolist() == [4.0, 4.0, 20.0]
    for _ in range(6):
        env.step(DOWN)
    assert env.agent.tolist() == [4, 0]  # clipped at the bottom row


@pytest.mark.parametrize("bad", [5, -1, 2.5, "up", True, None, [1, 2]])
def test_bad_actions_are_rejected(bad):
    env = GridTiming()
    env.reset(seed=1)
    with pytest.raises(ValueError, match=r"bad action .*expected an integer in 0\.\.4 \(0 stay"):
        env.step(bad)


@pytest.mark.parametrize("bad", [[0, 1, 5], [0, 1, -1], [0, 1], [0.0, 1.0, 2.0], [[0, 1, 2]]])
def test_bad_batched_actions_are_rejected(bad):
    batched = BatchedGridTiming(3)
    batched.reset(seed=1)
    with pytest.raises(ValueError, match=r"bad action .*one per environment \(3\)"):
        batched.step(np.array(bad))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="bad size"):
        GridTiming(size=1)
    with pytest.raises(ValueError, match="bad t_range"):
        GridTiming(t_range=(5, 2))
    with pytest.raises(ValueError, match="bad T 0"):
        GridTiming().reset(options={"T": 0})
    with pytest.raises(TaskError, match="test_T .* must reach beyond train_T"):
        GridWorld(test_T=(1, 10))
    for bad, match in (({"size": 100}, "bad size 100; expected an integer in 2..50"),
                       ({"gamma": float("nan")}, r"bad gamma nan; expected a finite number in"),
                       ({"entropy": float("inf")}, r"bad entropy inf; .* >= 0"),
                       ({"max_grad_norm": 0}, r"bad max_grad_norm 0; .* > 0"),
                       ({"train_T": (1.5, 3)}, r"bad train_T \(1.5, 3\); expected LOW,HIGH"),
                       ({"test_T": (1, 500)}, "reaches beyond the largest T, 100")):
        with pytest.raises(TaskError, match=match):
            GridWorld(**bad)
    with pytest.raises(TaskError, match="unknown model 'nac'.*lstm, lstm\\+nac"):
        GridWorld().check_model("nac")


def test_every_episode_can_be_won():
    env = BatchedGridTiming(2000, t_range=(1, 10))
    _, info = env.reset(seed=3)
    dist = np.abs(env.target - env.agent).sum(1)
    assert np.all(dist >= 1) and np.all(dist <= env.T)
    assert set(np.unique(env.T)) == set(range(1, 11))
    assert np.all((env.agent >= 0) & (env.agent < 5))


def test_reset_seed_reproduces_episodes():
    def episode(seed):
        env = GridTiming()
        out = [env.reset(seed=seed)[0].tolist()]
        rng = np.random.default_rng(0)
        done = False
        while not done:
            obs, reward, done, _, _ = env.step(int(rng.integers(5)))
            out.append((obs.tolist(), reward))
        return out

    assert episode(7) == episode(7)
    assert any(episode(7)[0] != episode(s)[0] for s in range(8, 12))
    a, b = BatchedGridTiming(16), BatchedGridTiming(16)
    assert np.array_equal(a.reset(seed=5)[0], b.reset(seed=5)[0])
    actions = np.arange(16) % 5
    assert all(np.array_equal(x, y) for x, y in zip(a.step(actions)[:4], b.step(actions)[:4]))


def test_batched_follows_the_rules_of_the_single_env():
    n = 64
    singles = [GridTiming() for _ in range(n)]
    for i, env in enumerate(singles):
        env.reset(seed=100 + i)
    batched = BatchedGridTiming(n)
    batched.reset(seed=0)
    batched.set_state([e.agent for e in singles], [e.target for e in singles],
                      [e.T for e in singles])
    rng = np.random.default_rng(1)
    alive = np.ones(n, bool)
    while alive.any():
        actions = rng.integers(0, 5, n)
        obs, reward, terminated, truncated, info = batched.step(actions)
        final = info.get("final_obs", obs)
        for i in np.flatnonzero(alive):
            s_obs, s_reward, s_term, s_trunc, _ = singles[i].step(int(actions[i]))
            assert np.array_equal(final[i] if terminated[i] else obs[i], s_obs)
            assert (reward[i], terminated[i], truncated[i]) == (s_reward, s_term, s_trunc)
        alive &= ~terminated
    assert batched.T.min() >= 1  # the finished ones were reset: same-step autoreset


@pytest.mark.parametrize("fixed", [False, True])
def test_a_snapshot_restores_the_same_steps(fixed):
    """What a training checkpoint keeps of the environments: restored into a fresh batch,
    the same actions give the same episodes, rewards and new placements."""
    rng = np.random.default_rng(0)
    env = BatchedGridTiming(64, t_range=(1, 10))
    env.reset(seed=3, options={"T": rng.integers(1, 11, size=64)} if fixed else None)
    for _ in range(7):
        env.step(rng.integers(0, 5, size=64))
    snap = env.snapshot()
    actions = rng.integers(0, 5, size=(30, 64))
    first = [env.step(a) for a in actions]
    other = BatchedGridTiming(64, t_range=(1, 10))
    other.reset(seed=99)
    other.restore(snap)
    again = [other.step(a) for a in actions]
    for (o1, r1, d1, _, _), (o2, r2, d2, _, _) in zip(first, again, strict=True):
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
    assert sum(d.sum() for _, _, d, _, _ in first) > 64, "episodes ended and were redrawn"
    with pytest.raises(ValueError, match="a snapshot of 64 environments, not 8"):
        BatchedGridTiming(8).restore(snap)


def test_autoreset_keeps_fixed_T_and_random_policy_rarely_wins():
    env = BatchedGridTiming(4, t_range=(1, 10))
    env.reset(seed=0, options={"T": np.array([1, 2, 30, 40])})
    for _ in range(50):
        env.step(np.zeros(4, dtype=np.int64))
        assert env.T.tolist() == [1, 2, 30, 40]
    rate = GridWorld().random_success()
    assert 0.005 < rate < 0.06  # the baseline a trained agent must beat


def test_headline_metrics():
    task = GridWorld(train_T=(1, 4), test_T=(1, 12))
    T = np.arange(1, 13)
    rate = [1, 1, 1, 1, 1, 0.9, 0.6, 0.5, 0.4, 1, 1, 1]
    m = task.headline({"T": T.tolist(), "success": rate})
    assert m["reach"] == 8 and m["reach_beyond"] == 4 and m["success"] is True
    assert m["interpolation_mse"] == 0.0
    assert m["extrapolation_mse"] == pytest.approx(1 - np.mean(rate[4:]))
    m = task.headline({"T": T.tolist(), "success": [1, 1, 1, 1, 0.2, *[1] * 7]})
    assert m["reach"] == 4 and m["success"] is False


def test_normalised_failure_rate():
    """The failure rates as percentages of the untrained agent's, overall and per T."""
    task = GridWorld(train_T=(1, 4), test_T=(1, 8))
    T = list(range(1, 9))
    untrained = {"T": T, "success": [0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]}
    same = task.headline(untrained, untrained)
    assert same["interpolation_normalised"] == pytest.approx(100.0)
    assert same["extrapolation_normalised"] == pytest.approx(100.0)
    exact = task.headline({"T": T, "success": [1.0] * 8}, untrained)
    assert exact["interpolation_normalised"] == 0 and exact["extrapolation_normalised"] == 0
    half = task.headline({"T": T, "success": [0.75, 0.5, 0.5, 0.5, 0, 0, 0.5, 1]}, untrained)
    # failure 0.4375 in training against the untrained 0.875; 0.625 against 0.75 beyond
    assert half["interpolation_normalised"] == pytest.approx(50.0)
    assert half["extrapolation_normalised"] == pytest.approx(100 * 0.625 / 0.75)
    assert half["success_by_T"]["normalised"] == [50.0, 50.0, 50.0, 50.0, 100.0, 100.0, 50.0,
                                                  None]  # never failed untrained at T = 8
    assert np.isnan(task.headline(untrained)["extrapolation_normalised"])  # no untrained curve


@pytest.mark.parametrize("fw", AVAILABLE[:1])
def test_untrained_agent_scores_100(fw):
    """lr 0: the final agent is the untrained one, so its normalised errors are 100."""
    from benchmarks import runner, suite

    budget = suite.Budget("tiny", steps=3, eval_interval=3, seeds=1, description="tests",
                          batch_size=4, lr=0.0)
    specs = suite.expand(["grid_world"], ["lstm+nac"], [fw], [0], budget,
                         {"train_T": [(1, 4)], "test_T": [(1, 8)], "eval_episodes": [16]})
    record, = runner.run_group(specs)
    m = record["metrics"]
    assert record["status"] == "ok", record.get("traceback")
    assert m["interpolation_normalised"] == pytest.approx(100.0)
    assert m["extrapolation_normalised"] == pytest.approx(100.0)
    assert {v for v in m["success_by_T"]["normalised"] if v is not None} == {100.0}


def test_memory_estimate_scales_with_the_replicas():
    """A group's seeds train as one program: every replica holds its own environments,
    rollouts, evaluation episodes and weights."""
    task = GridWorld()
    one, ten = task.footprint(256, 1), task.footprint(256, 10)
    assert sum(ten.values()) == pytest.approx(10 * sum(one.values()))
    assert all("10 replicas" in what for what in ten)
