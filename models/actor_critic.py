"""The framework-free actor-critic loop of the grid-world task: A2C with n-step returns.

The agent (same numpy initialisation in both frameworks, ``init_agent``; its numpy
forward math, ``reference_step``, is the spec both frameworks are tested against):
- observation x_t = [d_row, d_col, T] (the target's offset and the instruction);
- core ``lstm``: an LSTM cell (the framework's own, ``hidden_size`` units):
  (h_t, c_t) = LSTM(x_t, (h_{t-1}, c_{t-1}));
- core ``lstm+UNIT`` (UNIT = nac (NAC+), nau or nalu, from the unit registry): the same
  LSTM plus an arithmetic accumulator of ``arith_size`` values beside it,
  a_t = a_{t-1} + UNIT([x_t, 1]), a_0 = 0. The running sum is linear in time, never
  saturates, and holds an exact clock (a = t w for the constant input's weight w) for
  any T; an LSTM must build its count from saturating gates. This is this suite's
  reading of [NALU]'s "NAC in the recurrent core" (the paper's wiring is not verified);
- heads: policy logits and value linear in [h_t, a_t, x_t] (a_t empty for ``lstm``).

Seeds: weights from ``[seed, INIT_STREAM]``, the environments' episodes from
``[seed, DATA_STREAM]``, the sampled actions from ``[seed, ACTION_STREAM]``; evaluation
episodes are the task's fixed ones (``EVAL_SEED``), the same for every seed and framework.

Training (one update = one ``step`` of the budget): ``batch_size`` environments run
``n_steps`` actions each (sampled from the policy with a numpy stream, so both
frameworks draw the same numbers); returns are n-step discounted sums bootstrapped
with the value after the last step (zero at an episode's end); the loss is
policy gradient (advantage = return - value, value not differentiated) +
``value_coef`` x 0.5 (return - value)^2 - ``entropy`` x policy entropy, averaged over
steps and environments; gradients through the segment only (truncated
backpropagation from the stored state at its start), clipped to a global norm of
``max_grad_norm``; Adam. NAU weights are clipped to [-1, 1] after each step (no
sparsity regulariser here). Seeds of a group train one after another: the framework
LSTM cells have no replica axis. Evaluation is greedy on the task's fixed episodes,
every ``eval_interval`` updates; the final agent is the one reported.

Checkpoints (`models.checkpoint`, one per seed of a group): at update boundaries, every
few minutes, when a stop is requested and when the seed ends, the agent and Adam, the
environments' `snapshot`, the action stream, the rollout's carried arrays (observation,
state, the policy and value already computed for the next step) and the curve so far. A
resumed seed continues bit for bit; a finished one is not trained again.
"""
from __future__ import annotations

import time

import numpy as np

from models import checkpoint, engine, reference, registry
from tasks.base import DATA_STREAM, INIT_STREAM

ACTION_STREAM = 3  # np.random.default_rng([seed, ACTION_STREAM]) samples the actions
N_OBS = 3
UNITS = {"lstm": None, "lstm+nac": "nac", "lstm+nau": "nau", "lstm+nalu": "nalu"}


def core_unit(model: str) -> str | None:
    """The arithmetic unit of a core (None for the plain LSTM)."""
    if model not in UNITS:
        raise registry.UnknownName(f"unknown agent core {model!r}; known: {', '.join(UNITS)}")
    return UNITS[model]


def _uniform(rng, n_in, n_out, gain=1.0):
    r = gain * np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-r, r, size=(n_in, n_out))


def init_agent(model: str, seed: int, hidden: int, arith: int, n_actions: int,
               n_obs: int = N_OBS) -> dict[str, np.ndarray]:
    """float64 parameters: ``lstm_*`` (gates i, f, g, o; forget bias 1), ``unit_*`` (the
    unit registry's initialisation, n_obs + 1 inputs -> arith outputs), ``pi_*`` and ``v_*``
    (heads over [h, a, x]; small, so that the first policy is nearly uniform)."""
    rng = np.random.default_rng([seed, INIT_STREAM])
    unit = core_unit(model)
    k = arith if unit else 0
    b = np.zeros(4 * hidden)
    b[hidden:2 * hidden] = 1.0
    p = {"lstm_W_x": np.concatenate([_uniform(rng, n_obs, hidden) for _ in range(4)], 1),
         "lstm_W_h": np.concatenate([_uniform(rng, hidden, hidden) for _ in range(4)], 1),
         "lstm_b": b}
    if unit:
        p.update({f"unit_{name}": v for name, v in reference.init(unit, n_obs + 1, k, rng).items()})
    p["pi_W"] = _uniform(rng, hidden + k + n_obs, n_actions, gain=0.1)
    p["pi_b"] = np.zeros(n_actions)
    p["v_W"] = _uniform(rng, hidden + k + n_obs, 1, gain=0.1)
    p["v_b"] = np.zeros(1)
    return p


def unit_params(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k.removeprefix("unit_"): v for k, v in params.items() if k.startswith("unit_")}


def zero_state(params: dict[str, np.ndarray], batch: int) -> tuple[np.ndarray, ...]:
    """(h, c, a) at t = 0; a has arith_size columns (none for the plain LSTM)."""
    hidden = params["lstm_W_h"].shape[0]
    k = params["pi_W"].shape[0] - hidden - N_OBS
    return (np.zeros((batch, hidden), np.float32), np.zeros((batch, hidden), np.float32),
            np.zeros((batch, k), np.float32))


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def reference_step(params, unit, obs, state):
    """One step of the agent in numpy: (logits, value, (h, c, a))."""
    h, c, a = (np.asarray(s, np.float64) for s in state)
    x = np.asarray(obs, np.float64)
    i, f, g, o = np.split(x @ params["lstm_W_x"] + h @ params["lstm_W_h"] + params["lstm_b"],
                          4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    if unit:
        a = a + reference.forward(unit, unit_params(params),
                                  np.concatenate([x, np.ones((len(x), 1))], -1))
    feat = np.concatenate([h, a, x], -1)
    return feat @ params["pi_W"] + params["pi_b"], (feat @ params["v_W"] + params["v_b"])[:, 0], \
        (h, c, a)


def n_step_returns(rewards, dones, last_value, gamma: float) -> np.ndarray:
    """(n, B) discounted returns, bootstrapped with last_value, cut at episode ends."""
    out = np.empty_like(rewards, dtype=np.float32)
    ret = np.asarray(last_value, np.float32)
    for t in range(len(rewards) - 1, -1, -1):
        ret = rewards[t] + gamma * ret * (1.0 - dones[t])
        out[t] = ret
    return out


def sample(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row by inverse CDF: the same draws in both frameworks."""
    u = rng.random(len(probs))
    return np.minimum((np.cumsum(probs, axis=1) < u[:, None]).sum(1), probs.shape[1] - 1)


def evaluate(agent, task) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy policy on the task's fixed episodes: (T, reward, arrived early) per episode."""
    env, obs = task.eval_env()
    T = env.T.copy()
    state = agent.zero_state(len(T))
    reward = np.zeros(len(T), np.float32)
    early = np.zeros(len(T), bool)
    active = np.ones(len(T), bool)
    while active.any():
        logits, _, state = agent.act(obs, state)
        obs, r, done, _, info = env.step(np.argmax(logits, axis=1))
        ended = active & done
        reward[ended] = r[ended]
        early[ended] = info["t"][ended] < T[ended]
        active &= ~done
    return T, reward, early


def run_group(task, specs, progress=None) -> tuple[list[dict], float]:
    """One result per spec (seeds one after another), and the seconds spent training."""
    return engine.run_seeds(_run, task, specs, progress)


def _run(task, spec, progress):
    p = task.params
    unit = core_unit(spec.unit)
    fw = registry.framework_module(spec.framework, "rl")
    init = init_agent(spec.unit, spec.seed, p["hidden_size"], p["arith_size"], 5)
    agent = fw.Agent(init, unit, lr=spec.lr, entropy=p["entropy"], value_coef=p["value_coef"],
                     max_grad_norm=p["max_grad_norm"], device=spec.device)
    env = task.env(spec.batch_size)
    obs, _ = env.reset(seed=int(np.random.default_rng([spec.seed, DATA_STREAM]).integers(2**31)))
    rng = np.random.default_rng([spec.seed, ACTION_STREAM])
    n, B = p["n_steps"], spec.batch_size
    loop = {"curve": {"step": [], "interpolation": [], "extrapolation": []},
            "untrained": None,  # the agent's per-T curve at step 0: the normalised errors' scale
            "status": "ok", "reason": "", "updates": 0, "seconds": 0.0}
    evaluated_at = set(engine.evaluation_steps(spec.steps, spec.eval_interval).tolist())

    def record(step):
        T, reward, early = evaluate(agent, task)
        if loop["untrained"] is None:
            loop["untrained"] = task.by_T(T, reward, early)
        interp, extrap = task.failure_rates(T, reward)
        for key, value in (("step", step), ("interpolation", interp),
                           ("extrapolation", extrap)):
            loop["curve"][key].append(value)

    saver = checkpoint.for_fit()  # one checkpoint per seed: a finished seed's is kept
    header = {"seed": spec.seed, "updates": spec.steps, "envs": B,
              "versions": checkpoint.versions(agent)}
    start = time.perf_counter()
    saved = _restore(saver, header, agent, env, rng, loop) if saver else None
    if saved is None:
        record(0)
        state = agent.zero_state(B)
        logits, value, next_state = agent.act(obs, state)
    else:
        obs, state, logits, value, next_state = saved
        if progress:
            progress(loop["updates"])
    before = loop["seconds"]

    def save():
        loop["seconds"] = before + time.perf_counter() - start
        saver.save(header, {"loop": loop, "agent": agent.get_state(), "env": env.snapshot(),
                            "actions": rng.bit_generator.state, "obs": obs,
                            "state": list(state), "logits": logits, "value": value,
                            "next_state": list(next_state)})

    begun = loop["updates"]
    obs_buf = np.empty((n, B, N_OBS), np.float32)
    act_buf = np.empty((n, B), np.int64)
    rew_buf = np.empty((n, B), np.float32)
    done_buf = np.empty((n, B), np.float32)
    finished = loop["status"] != "ok" or begun == spec.steps
    while not finished:
        step = loop["updates"] + 1
        stop = checkpoint.stop_requested()
        if saver is not None and step > begun + 1 and (stop or saver.due()):
            save()
        if stop:
            raise checkpoint.Interrupted(f"stopped before update {step:,} of {spec.steps:,}")
        first_state = state
        for t in range(n):
            probs = _softmax(logits)
            actions = sample(probs, rng)
            obs_buf[t], act_buf[t] = obs, actions
            obs, rew_buf[t], done, _, _ = env.step(actions)
            done_buf[t] = done
            keep = (1.0 - done_buf[t])[:, None]
            state = tuple(s * keep for s in next_state)
            logits, value, next_state = agent.act(obs, state)
        returns = n_step_returns(rew_buf, done_buf, value, p["gamma"])
        losses = agent.update(obs_buf, act_buf, returns, 1.0 - done_buf, first_state)
        loop["updates"] = step
        if progress:
            progress(1)
        if not all(np.isfinite(v) for v in losses.values()) or not np.isfinite(logits).all():
            loop["status"], loop["reason"] = "diverged", f"non-finite loss or policy at step {step}"
            if progress:
                progress(spec.steps - step)
        elif step in evaluated_at:
            record(step)
        finished = loop["status"] != "ok" or step == spec.steps
        if finished and saver is not None:
            save()
    seconds = before + time.perf_counter() - start
    if loop["status"] == "ok":
        T, reward, early = evaluate(agent, task)
        metrics = task.headline(task.by_T(T, reward, early), loop["untrained"])
    else:
        metrics = {"success": False, "interpolation_mse": float("nan"),
                   "extrapolation_mse": float("nan")}
    metrics["random_success"] = task.random_success()
    return {"status": loop["status"], "reason": loop["reason"], "metrics": metrics,
            "curve": loop["curve"]}, seconds


def _restore(saver, header, agent, env, rng, loop):
    """A seed's checkpoint into the agent, the environments, the action stream and ``loop``;
    the rollout's carried arrays (obs, state, logits, value, next state), or None (nothing
    changed) when there is none or it is not this program's."""
    saved = saver.load(header)
    if saved is None:
        return None
    env_before, rng_before = env.snapshot(), rng.bit_generator.state
    try:
        carried = (saved["obs"], tuple(saved["state"]), saved["logits"], saved["value"],
                   tuple(saved["next_state"]))
        env.restore(saved["env"])
        rng.bit_generator.state = saved["actions"]
        agent.set_state(saved["agent"])  # last: it checks every shape before it changes any
    except (ValueError, KeyError, TypeError) as err:
        env.restore(env_before)
        rng.bit_generator.state = rng_before
        saver.reject(err)
        return None
    loop.update(saved["loop"])
    return carried


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
