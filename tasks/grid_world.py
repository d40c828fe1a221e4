"""Grid-world timing [NALU]: step onto the target exactly at step T.

[NALU] (described, details not verified) trains an agent with a recurrent core in a
small grid world, given an integer instruction T, to step onto a target exactly at
time T; with a NAC in its core it keeps its timing for T far beyond the training
range, while an LSTM core loses count. This module is this suite's own documented
version of it, registered with Gymnasium as ``arithbench/GridTiming-v0`` on import.

Rules (``GridTiming``, and ``BatchedGridTiming`` for many environments at once):
- An N x N grid (``size``, default 5). At reset, T is drawn uniformly from the
  integers of ``t_range`` (or given: ``reset(options={"T": T})``), the agent at a
  uniform random cell, the target at a uniform random *other* cell at most T moves
  away (Manhattan distance 1..T), so every episode can be won.
- Actions (``Discrete(5)``): 0 stay, 1 up, 2 down, 3 left, 4 right. A move off the
  grid leaves the agent where it is. Anything else (-1, 5, 2.5, "up") raises a
  ValueError naming the value and the accepted actions.
- Observation: float32 ``[target_row - agent_row, target_col - agent_col, T]``; the
  elapsed time is not in it, so the agent must count.
- Step t (t = 1 after the first action): the episode ends (``terminated``) when the
  agent is on the target or when t = T, whichever comes first. The reward is 1 when
  the agent is on the target exactly at t = T, else 0 (arriving early ends the
  episode with 0). ``truncated`` is never set: no episode is longer than T.
- ``reset(seed=...)`` makes episodes reproducible.

The benchmark task (``GridWorld``): training draws T from ``train_T`` (default 1..10),
the test range ``test_T`` (default 1..40) is four times wider. Evaluation is greedy
(argmax action) on fixed episodes (``eval_episodes`` per T, placements drawn from a
constant seed): per T, the success rate, mean reward (equal to the success rate with
this reward; kept as its own column so that a change of reward shows) and the share
of episodes that arrived early. Headline metrics:
- ``interpolation_mse``: 1 - success rate over the T of the training range;
- ``extrapolation_mse``: 1 - success rate over the T of the test range above it;
- ``reach``: the largest T such that the success rate is at least 50% at every T from
  the top of the training range up to it; ``reach_beyond``: how far that is past it;
- ``success``: at least 50% at every training T and a reach of at least twice the top
  of the training range (the agent keeps its timing far beyond what it was taught);
- ``interpolation_normalised`` / ``extrapolation_normalised``: those failure rates as a
  percentage of the untrained agent's (same seed, same episodes; `tasks.base.normalised`):
  100 = fails as often as before training, 0 = never fails; per T in
  ``success_by_T["normalised"]`` (null where the untrained agent never failed at that T).
The agents and the training loop: ``models/actor_critic.py``.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv

from tasks.base import EVAL_SEED, Task, TaskError, normalised

ENV_ID = "arithbench/GridTiming-v0"
ACTIONS = ("stay", "up", "down", "left", "right")
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int64)
MAX_T = 100  # the largest instruction an environment accepts (the observation's bound)
MODELS = ("lstm", "lstm+nac", "lstm+nau", "lstm+nalu")


# The rules, written once for a batch of environments; GridTiming is a batch of one.
def _cells(size: int) -> np.ndarray:
    return np.stack(np.divmod(np.arange(size * size), size), axis=-1)


def draw_T(rng: np.random.Generator, n: int, t_range: tuple[int, int]) -> np.ndarray:
    return rng.integers(t_range[0], t_range[1] + 1, size=n)


def place(rng: np.random.Generator, T: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Agent uniform over the cells; target uniform over the other cells within T moves."""
    cells = _cells(size)
    agent = cells[rng.integers(0, len(cells), size=len(T))]
    dist = np.abs(cells[None] - agent[:, None]).sum(-1)
    valid = (dist >= 1) & (dist <= np.asarray(T)[:, None])
    k = np.floor(rng.random(len(T)) * valid.sum(1)).astype(np.int64)
    index = np.argmax(np.cumsum(valid, axis=1) > k[:, None], axis=1)
    return agent, cells[index]


def observe(agent: np.ndarray, target: np.ndarray, T: np.ndarray) -> np.ndarray:
    return np.concatenate([target - agent, np.asarray(T)[:, None]], axis=1).astype(np.float32)


def check_actions(actions, n: int, shown=None) -> np.ndarray:
    """Integer actions in 0..4, one per environment; anything else is a clear ValueError
    naming ``shown`` (default: the actions)."""
    a = np.asarray(actions)
    ok = (a.shape == (n,) and np.issubdtype(a.dtype, np.integer)
          and bool(np.all((a >= 0) & (a < len(ACTIONS)))))
    if not ok:
        raise ValueError(f"bad action {actions if shown is None else shown!r}; expected an "
                         f"integer in 0..{len(ACTIONS) - 1} "
                         f"({', '.join(f'{i} {a}' for i, a in enumerate(ACTIONS))})"
                         + (f", one per environment ({n})" if n > 1 else ""))
    return a.astype(np.int64)


def advance(agent, target, t, T, actions, size):
    """One step of every environment: (agent, t, reward, terminated)."""
    agent = np.clip(agent + MOVES[actions], 0, size - 1)
    t = t + 1
    on = np.all(agent == target, axis=1)
    reward = (on & (t == T)).astype(np.float32)
    return agent, t, reward, on | (t >= T)


def _observation_space(size: int, max_t: int) -> spaces.Box:
    low = np.array([-(size - 1), -(size - 1), 1], dtype=np.float32)
    high = np.array([size - 1, size - 1, max_t], dtype=np.float32)
    return spaces.Box(low, high, dtype=np.float32)


def _check_env_args(size, t_range, max_t) -> tuple[int, tuple[int, int], int]:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2:
        raise ValueError(f"bad size {size!r}; expected an integer >= 2")
    lo, hi = _int_range(t_range, "t_range", ValueError)
    if isinstance(max_t, bool) or not isinstance(max_t, (int, np.integer)) or max_t < hi:
        raise ValueError(f"bad max_T {max_t!r}; expected an integer >= the top of t_range ({hi})")
    return int(size), (lo, hi), int(max_t)


def _int_range(value, what: str, error=TaskError) -> tuple[int, int]:
    try:
        lo, hi = value
        ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                 or (isinstance(v, float) and v.is_integer()) for v in (lo, hi))
    except (TypeError, ValueError):
        ok = False
    if not ok or not 1 <= int(lo) <= int(hi):
        raise error(f"bad {what} {value!r}; expected LOW,HIGH: integers with 1 <= LOW <= HIGH")
    return int(lo), int(hi)


class GridTiming(gym.Env):
    """One environment (the rules are in the module docstring)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, size: int = 5, t_range: tuple[int, int] = (1, 10), max_T: int = MAX_T,
                 render_mode: str | None = None):
        self.size, self.t_range, self.max_T = _check_env_args(size, t_range, max_T)
        if render_mode not in (None, "ansi"):
            raise ValueError(f"bad render_mode {render_mode!r}; expected None or 'ansi'")
        self.render_mode = render_mode
        self.observation_space = _observation_space(self.size, self.max_T)
        self.action_space = spaces.Discrete(len(ACTIONS))
        self._done = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        T = (options or {}).get("T")
        if T is None:
            T = int(draw_T(self.np_random, 1, self.t_range)[0])
        elif isinstance(T, bool) or not isinstance(T, (int, np.integer)) \
                or not 1 <= T <= self.max_T:
            raise ValueError(f"bad T {T!r}; expected an integer in 1..{self.max_T}")
        self.T, self.t = int(T), 0
        agent, target = place(self.np_random, np.array([self.T]), self.size)
        self.agent, self.target = agent[0], target[0]
        self._done = False
        return self._obs(), self._info()

    def step(self, action):
        if self._done:
            raise RuntimeError("step() after the episode ended; call reset() first")
        a = check_actions(np.reshape(action, -1), 1, shown=action)
        agent, t, reward, done = advance(self.agent[None], self.target[None], np.array([self.t]),
                                         np.array([self.T]), a, self.size)
        self.agent, self.t, self._done = agent[0], int(t[0]), bool(done[0])
        return self._obs(), float(reward[0]), self._done, False, self._info()

    def _obs(self) -> np.ndarray:
        return observe(self.agent[None], self.target[None], np.array([self.T]))[0]

    def _info(self) -> dict:
        return {"t": self.t, "T": self.T,
                "distance": int(np.abs(self.target - self.agent).sum())}

    def render(self):
        if self.render_mode != "ansi":
            return None
        rows = [["."] * self.size for _ in range(self.size)]
        rows[self.target[0]][self.target[1]] = "T"
        rows[self.agent[0]][self.agent[1]] = "A"
        return "\n".join("".join(r) for r in rows) + f"\nt={self.t} T={self.T}\n"


class BatchedGridTiming(VectorEnv):
    """``num_envs`` environments under the same rules, stepped as numpy arrays.

    Autoreset is same-step: an environment whose episode ended returns the first
    observation of its next episode (the ended episode's is in ``info["final_obs"]``).
    With ``reset(options={"T": array})`` every environment keeps its T across resets.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int, size: int = 5, t_range: tuple[int, int] = (1, 10),
                 max_T: int = MAX_T):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) \
                or num_envs < 1:
            raise ValueError(f"bad num_envs {num_envs!r}; expected a positive integer")
        self.size, self.t_range, self.max_T = _check_env_args(size, t_range, max_T)
        self.num_envs = int(num_envs)
        self.single_observation_space = _observation_space(self.size, self.max_T)
        self.single_action_space = spaces.Discrete(len(ACTIONS))
        self.observation_space = spaces.Box(
            np.tile(self.single_observation_space.low, (self.num_envs, 1)),
            np.tile(self.single_observation_space.high, (self.num_envs, 1)), dtype=np.float32)
        self.action_space = spaces.MultiDiscrete(np.full(self.num_envs, len(ACTIONS)))
        self._np_random, _ = seeding.np_random(None)
        self._fixed_T = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._np_random, _ = seeding.np_random(seed)
        T = (options or {}).get("T")
        if T is not None:
            T = np.asarray(T)
            if T.shape != (self.num_envs,) or not np.issubdtype(T.dtype, np.integer) \
                    or T.min() < 1 or T.max() > self.max_T:
                raise ValueError(f"bad T {T!r}; expected {self.num_envs} integers in "
                                 f"1..{self.max_T}")
            self._fixed_T = T.astype(np.int64)
        else:
            self._fixed_T = None
        self.T = np.empty(self.num_envs, dtype=np.int64)
        self.t = np.zeros(self.num_envs, dtype=np.int64)
        self.agent = np.zeros((self.num_envs, 2), dtype=np.int64)
        self.target = np.zeros((self.num_envs, 2), dtype=np.int64)
        self._new_episodes(np.ones(self.num_envs, dtype=bool))
        return observe(self.agent, self.target, self.T), self._info()

    def set_state(self, agent, target, T, t=None) -> None:
        """Put every environment in a given state (tests: compare with GridTiming)."""
        self.agent, self.target = np.array(agent, dtype=np.int64), np.array(target, np.int64)
        self.T = np.array(T, dtype=np.int64)
        self.t = np.zeros(self.num_envs, np.int64) if t is None else np.array(t, np.int64)

    def snapshot(self) -> dict:
        """Everything the next steps depend on (episodes, their clocks, fixed T, the random
        state): what a training checkpoint keeps; `restore` puts it back."""
        return {"agent": self.agent.copy(), "target": self.target.copy(), "T": self.T.copy(),
                "t": self.t.copy(), "fixed_T": None if self._fixed_T is None
                else self._fixed_T.copy(), "random": self._np_random.bit_generator.state}

    def restore(self, snapshot: dict) -> None:
        """The environments as `snapshot` saw them: the same steps follow, bit for bit."""
        shape = (self.num_envs,)
        if np.shape(snapshot["T"]) != shape or np.shape(snapshot["agent"]) != shape + (2,):
            raise ValueError(f"a snapshot of {len(snapshot['T'])} environments, not "
                             f"{self.num_envs}")
        self.set_state(snapshot["agent"], snapshot["target"], snapshot["T"], snapshot["t"])
        fixed = snapshot["fixed_T"]
        self._fixed_T = None if fixed is None else np.array(fixed, np.int64)
        self._np_random.bit_generator.state = snapshot["random"]

    def _new_episodes(self, mask: np.ndarray) -> None:
        n = int(mask.sum())
        if not n:
            return
        T = (self._fixed_T[mask] if self._fixed_T is not None
             else draw_T(self._np_random, n, self.t_range))
        self.T[mask], self.t[mask] = T, 0
        self.agent[mask], self.target[mask] = place(self._np_random, T, self.size)

    def step(self, actions):
        a = check_actions(actions, self.num_envs)
        self.agent, self.t, reward, done = advance(self.agent, self.target, self.t, self.T, a,
                                                   self.size)
        info = self._info()
        if done.any():
            info["final_obs"] = observe(self.agent, self.target, self.T)
            self._new_episodes(done)
        return (observe(self.agent, self.target, self.T), reward, done,
                np.zeros(self.num_envs, dtype=bool), info)

    def _info(self) -> dict:
        return {"t": self.t.copy(), "T": self.T.copy()}


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point=GridTiming)


class GridWorld(Task):
    """The benchmark task: train on ``train_T``, report success by T over ``test_T``."""

    name = "grid_world"
    loop = "models.actor_critic"
    parameters = {
        "size": 5,
        "train_T": (1, 10),
        "test_T": (1, 40),
        "eval_episodes": 32,  # per T, greedy, fixed placements
        "hidden_size": 32,  # LSTM units
        "arith_size": 4,  # outputs of the arithmetic accumulator (lstm+UNIT)
        "n_steps": 8,  # A2C rollout length: n-step returns, truncated backpropagation
        "gamma": 0.99,
        "entropy": 0.01,  # entropy bonus coefficient
        "value_coef": 0.5,
        "max_grad_norm": 1.0,
    }
    default_models = ("lstm", "lstm+nac")
    # A step is one A2C update of batch_size environments x n_steps per seed; a group's
    # seeds train as one program, a replica each (models/actor_critic.py).
    budgets = {
        "smoke": {"steps": 250, "eval_interval": 125, "batch_size": 128, "lr": 3e-3, "seeds": 1},
        "quick": {"steps": 500, "eval_interval": 125, "batch_size": 256, "lr": 3e-3, "seeds": 2},
        "paper": {"steps": 20_000, "eval_interval": 1_000, "batch_size": 256, "lr": 1e-3,
                  "seeds": 10},
    }

    def validate(self) -> None:
        p = self.params
        size = p["size"]
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) \
                or not 2 <= size <= 50:
            raise TaskError(f"bad size {size!r}; expected an integer in 2..50")
        p["train_T"] = _int_range(p["train_T"], "train_T")
        p["test_T"] = _int_range(p["test_T"], "test_T")
        if p["test_T"][1] <= p["train_T"][1]:
            raise TaskError(f"test_T {p['test_T']} must reach beyond train_T {p['train_T']}")
        if p["test_T"][1] > MAX_T:
            raise TaskError(f"test_T {p['test_T']} reaches beyond the largest T, {MAX_T}")
        for key in ("eval_episodes", "hidden_size", "arith_size", "n_steps"):
            if isinstance(p[key], bool) or not isinstance(p[key], (int, np.integer)) \
                    or p[key] < 1:
                raise TaskError(f"bad {key} {p[key]!r}; expected a positive integer")
        for key, low, high in (("gamma", 0, 1), ("entropy", 0, np.inf), ("value_coef", 0, np.inf),
                               ("max_grad_norm", 0, np.inf)):
            value = p[key]
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not np.isfinite(value) or not low <= value <= high \
                    or (key == "max_grad_norm" and value <= 0):
                accepted = (f"in [{low}, {high}]" if np.isfinite(high)
                            else "> 0" if key == "max_grad_norm" else f">= {low}")
                raise TaskError(f"bad {key} {value!r}; expected a finite number {accepted}")

    def footprint(self, batch_size, replicas):
        """The evaluation episodes (placement temporaries over the grid's cells, agent
        state) and the training environments with their rollouts, each replica its own
        (a group's seeds train as one program), and every replica's weights."""
        p = self.params
        cells, h = p["size"] ** 2, p["hidden_size"] + p["arith_size"]
        episodes = (p["test_T"][1] - p["test_T"][0] + 1) * p["eval_episodes"]
        return {
            f"evaluation episodes ({replicas} replicas x {p['test_T'][1] - p['test_T'][0] + 1}"
            f" T x eval_episodes={p['eval_episodes']}, size={p['size']})":
                replicas * episodes * (40.0 * cells + 64.0 * h),
            f"training ({replicas} replicas x batch {batch_size} x n_steps={p['n_steps']}, "
            f"hidden_size={p['hidden_size']})":
                replicas * batch_size * (40.0 * cells + 64.0 * h * p["n_steps"]),
            f"weights ({replicas} replicas, hidden_size={p['hidden_size']})":
                replicas * 64.0 * h * h,
        }

    def check_model(self, model: str) -> None:
        if model not in MODELS:
            raise TaskError(f"unknown model {model!r} for task {self.name!r}; known: "
                            f"{', '.join(MODELS)}")

    def env(self, num_envs: int) -> BatchedGridTiming:
        """Training environments: T from the training range."""
        return BatchedGridTiming(num_envs, self.params["size"], self.params["train_T"], MAX_T)

    def eval_T(self) -> np.ndarray:
        """Every T of the test range, ``eval_episodes`` times each."""
        lo, hi = self.params["test_T"]
        return np.repeat(np.arange(lo, hi + 1), self.params["eval_episodes"])

    def eval_env(self) -> tuple[BatchedGridTiming, np.ndarray]:
        """The fixed evaluation episodes (same placements for every seed and framework)."""
        T = self.eval_T()
        env = BatchedGridTiming(len(T), self.params["size"], self.params["test_T"], MAX_T)
        obs, _ = env.reset(seed=EVAL_SEED, options={"T": T})
        return env, obs

    def by_T(self, T: np.ndarray, reward: np.ndarray, early: np.ndarray) -> dict[str, list]:
        """Per T of the test range: success rate, mean reward, share arriving early."""
        Ts = np.unique(T)
        return {"T": Ts.tolist(),
                "success": [float(np.mean(reward[T == v] > 0)) for v in Ts],
                "reward": [float(np.mean(reward[T == v])) for v in Ts],
                "early": [float(np.mean(early[T == v])) for v in Ts]}

    def failure_rates(self, T: np.ndarray, reward: np.ndarray) -> tuple[float, float]:
        """(1 - success over training T, 1 - success over test T above the training range)."""
        hi = self.params["train_T"][1]
        inside = (T >= self.params["train_T"][0]) & (T <= hi)
        return (float(1 - np.mean(reward[inside] > 0)), float(1 - np.mean(reward[T > hi] > 0)))

    def headline(self, curve: dict[str, list],
                 untrained: dict[str, list] | None = None) -> dict[str, Any]:
        """Headline metrics from the final per-T curve (see the module docstring);
        ``untrained``: the untrained agent's per-T curve on the same episodes, which
        scales the normalised errors (NaN without it)."""
        T, rate = np.array(curve["T"]), np.array(curve["success"])
        lo, hi = self.params["train_T"]
        inside = (T >= lo) & (T <= hi)
        start = (np.array(untrained["success"]) if untrained is not None
                 else np.full(len(T), np.nan))
        if untrained is not None:
            curve = {**curve, "normalised": [
                None if np.isnan(v) else v
                for v in (normalised(1 - r, 1 - r0) for r, r0 in zip(rate, start))]}
        reach = hi
        for v, r in zip(T[T > hi], rate[T > hi]):
            if r < 0.5:
                break
            reach = int(v)
        interp = float(1 - rate[inside].mean())
        extrap = float(1 - rate[T > hi].mean())
        return {
            "success": bool(rate[inside].min() >= 0.5 and reach >= min(2 * hi, T.max())),
            "interpolation_mse": interp,
            "extrapolation_mse": extrap,
            "interpolation_normalised": normalised(interp, 1 - start[inside].mean()),
            "extrapolation_normalised": normalised(extrap, 1 - start[T > hi].mean()),
            "train_success": 1 - interp,
            "test_success": 1 - extrap,
            "reach": reach,
            "reach_beyond": reach - hi,
            "train_T": [lo, hi],
            "success_by_T": curve,
        }

    def random_success(self, episodes: int = 4000, seed: int = 0) -> float:
        """Success rate of the uniform random policy over the training range (a baseline)."""
        env = BatchedGridTiming(episodes, self.params["size"], self.params["train_T"], MAX_T)
        rng = np.random.default_rng(seed)
        env.reset(seed=seed)
        reward = np.zeros(episodes, np.float32)
        active = np.ones(episodes, dtype=bool)
        while active.any():
            _, r, done, _, _ = env.step(rng.integers(0, len(ACTIONS), episodes))
            reward[active] = r[active]
            active &= ~done
        return float(np.mean(reward > 0))
