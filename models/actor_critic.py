"""The framework-free actor-critic loop of the grid-world task: A2C with n-step returns.

The agent (same numpy initialisation in both frameworks, ``init_agent``; its numpy
forward math, ``reference_step``, is the spec both frameworks are tested against):
- observation x_t = [d_row, d_col, T] (the target's offset and the instruction);
- core ``lstm``: an LSTM cell (``hidden_size`` units; gates i, f, g, o, one bias):
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
sparsity regulariser here). Evaluation is greedy on the task's fixed episodes, every
``eval_interval`` updates; the final agent is the one reported.

A group's seeds train as one program of R replicas: every parameter of the agent carries
a leading replica axis (the replica-axis LSTM of `models/<fw>/cells.py`, the units of
`models/<fw>/units`), ``act`` and ``update`` take (R, B, ...) arrays, each replica has
its own environments, action stream and evaluation environments, the loss is averaged
per replica and summed over replicas, the gradient norm is clipped per replica, and one
Adam (element-wise) steps them all. Every op is per replica, so a replica's numbers are
those of its seed trained alone, bit for bit (tested), where each replica's activations
fill whole SIMD blocks: ``hidden_size`` and ``arith_size`` times each batch (training
environments, evaluation episodes) multiples of 32, as with the defaults and batches of
multiples of 8. Otherwise some of a replica's elements fall in an element-wise loop's
scalar tail, whose exp, log, tanh or sigmoid may round apart from the SIMD one, and which
elements do depends on R. A replica whose loss or policy turns non-finite is marked
diverged and its curve stops; the others train on; the program stops early only when all
have diverged.

Checkpoints (`models.checkpoint`, one for the group): at update boundaries, every few
minutes, when a stop is requested and when the program ends, the agent and Adam, every
replica's environments (`snapshot`) and action stream, the rollout's carried arrays
(observation, state, the policy and value already computed for the next step) and each
replica's curve and status. A resumed program continues bit for bit; a finished one is
not trained again.
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
    """Greedy policy of every replica on the task's fixed episodes, an evaluation
    environment per replica: T per episode, and (R, episodes) reward and arrived early."""
    envs, obs = zip(*(task.eval_env() for _ in range(agent.replicas)))
    T = envs[0].T.copy()
    obs = np.stack(obs)
    state = agent.zero_state(len(T))
    reward = np.zeros(obs.shape[:2], np.float32)
    early = np.zeros(obs.shape[:2], bool)
    active = np.ones(obs.shape[:2], bool)
    while active.any():
        logits, _, state = agent.act(obs, state)
        actions = np.argmax(logits, axis=-1)  # a diverged replica's NaN policy gives 0: ignored
        for r, env in enumerate(envs):
            obs[r], rew, done, _, info = env.step(actions[r])
            ended = active[r] & done
            reward[r, ended] = rew[ended]
            early[r, ended] = info["t"][ended] < T[ended]
            active[r] &= ~done
    return T, reward, early


def run_group(task, specs, progress=None) -> tuple[list[dict], float]:
    """One result per spec, and the seconds spent training: the group's seeds (equal but
    for the seed) train as one program of R = len(specs) replicas."""
    p = task.params
    first = specs[0]
    R, n, B = len(specs), p["n_steps"], first.batch_size
    unit = core_unit(first.unit)
    fw = registry.framework_module(first.framework, "rl")
    inits = [init_agent(first.unit, s.seed, p["hidden_size"], p["arith_size"], 5) for s in specs]
    agent = fw.Agent({k: np.stack([q[k] for q in inits]) for k in inits[0]}, unit, lr=first.lr,
                     entropy=p["entropy"], value_coef=p["value_coef"],
                     max_grad_norm=p["max_grad_norm"], device=first.device)
    envs = [task.env(B) for _ in specs]
    obs = np.stack([env.reset(seed=int(np.random.default_rng([s.seed, DATA_STREAM])
                                       .integers(2**31)))[0] for env, s in zip(envs, specs)])
    rngs = [np.random.default_rng([s.seed, ACTION_STREAM]) for s in specs]
    loop = {"curves": [{"step": [], "interpolation": [], "extrapolation": []} for _ in specs],
            "untrained": None,  # per replica, the per-T curve at step 0: the normalised scale
            "status": ["ok"] * R, "reason": [""] * R, "updates": 0, "seconds": 0.0}
    evaluated_at = set(engine.evaluation_steps(first.steps, first.eval_interval).tolist())

    def record(step):
        T, reward, early = evaluate(agent, task)
        if loop["untrained"] is None:
            loop["untrained"] = [task.by_T(T, reward[r], early[r]) for r in range(R)]
        for r in np.flatnonzero(np.array(loop["status"]) == "ok"):
            interp, extrap = task.failure_rates(T, reward[r])
            for key, value in (("step", step), ("interpolation", interp),
                               ("extrapolation", extrap)):
                loop["curves"][r][key].append(value)

    saver = checkpoint.for_fit()  # one checkpoint for the group
    header = {"seeds": [s.seed for s in specs], "updates": first.steps, "envs": B,
              "versions": checkpoint.versions(agent)}
    start = time.perf_counter()
    saved = _restore(saver, header, agent, envs, rngs, loop) if saver else None
    if saved is None:
        record(0)
        state = agent.zero_state(B)
        logits, value, next_state = agent.act(obs, state)
    else:
        obs, state, logits, value, next_state = saved
        if progress:
            progress(loop["updates"] * R)
    before = loop["seconds"]

    def save():
        loop["seconds"] = before + time.perf_counter() - start
        saver.save(header, {"loop": loop, "agent": agent.get_state(),
                            "envs": [env.snapshot() for env in envs],
                            "actions": [rng.bit_generator.state for rng in rngs], "obs": obs,
                            "state": list(state), "logits": logits, "value": value,
                            "next_state": list(next_state)})

    begun = loop["updates"]
    # the rollout, replica-major (R, n, B, ...) as the agents take it
    obs_buf = np.empty((R, n, B, N_OBS), np.float32)
    act_buf = np.zeros((R, n, B), np.int64)
    rew_buf = np.empty((R, n, B), np.float32)
    done_buf = np.empty((R, n, B), np.float32)
    alive = np.array(loop["status"]) == "ok"
    finished = not alive.any() or begun == first.steps
    while not finished:
        step = loop["updates"] + 1
        stop = checkpoint.stop_requested()
        if saver is not None and step > begun + 1 and (stop or saver.due()):
            save()
        if stop:
            raise checkpoint.Interrupted(f"stopped before update {step:,} of {first.steps:,}")
        first_state = state
        for t in range(n):
            obs_buf[:, t] = obs
            for r in np.flatnonzero(alive):  # a diverged replica stays put (action 0)
                act_buf[r, t] = sample(_softmax(logits[r]), rngs[r])
            for r, env in enumerate(envs):
                obs[r], rew_buf[r, t], done, _, _ = env.step(act_buf[r, t])
                done_buf[r, t] = done
            keep = (1.0 - done_buf[:, t])[..., None]
            state = tuple(s * keep for s in next_state)
            logits, value, next_state = agent.act(obs, state)
        returns = n_step_returns(rew_buf.swapaxes(0, 1), done_buf.swapaxes(0, 1), value,
                                 p["gamma"]).swapaxes(0, 1)
        losses = agent.update(obs_buf, act_buf, np.ascontiguousarray(returns), 1.0 - done_buf,
                              first_state)
        loop["updates"] = step
        if progress:
            progress(R)
        finite = np.isfinite(np.stack(list(losses.values()))).all(0) \
            & np.isfinite(logits).all(axis=(1, 2))
        for r in np.flatnonzero(alive & ~finite):
            loop["status"][r] = "diverged"
            loop["reason"][r] = f"non-finite loss or policy at step {step}"
            act_buf[r] = 0
        alive = np.array(loop["status"]) == "ok"
        if alive.any() and step in evaluated_at:
            record(step)
        finished = not alive.any() or step == first.steps
        if finished and saver is not None:
            save()
    if not alive.any() and loop["updates"] < first.steps and progress:
        progress((first.steps - loop["updates"]) * R)  # every replica diverged: stop early
    seconds = before + time.perf_counter() - start
    final = evaluate(agent, task) if alive.any() else None
    random_success = task.random_success()
    out = []
    for r in range(R):
        if loop["status"][r] == "ok":
            T, reward, early = final
            metrics = task.headline(task.by_T(T, reward[r], early[r]), loop["untrained"][r])
        else:
            metrics = {"success": False, "interpolation_mse": float("nan"),
                       "extrapolation_mse": float("nan")}
        metrics["random_success"] = random_success
        out.append({"status": loop["status"][r], "reason": loop["reason"][r],
                    "metrics": metrics, "curve": loop["curves"][r]})
    return out, seconds


def _restore(saver, header, agent, envs, rngs, loop):
    """The group's checkpoint into the agent, the environments, the action streams and
    ``loop``; the rollout's carried arrays (obs, state, logits, value, next state), or None
    (nothing changed) when there is none or it is not this program's."""
    saved = saver.load(header)
    if saved is None:
        return None
    envs_before = [env.snapshot() for env in envs]
    rngs_before = [rng.bit_generator.state for rng in rngs]
    try:
        carried = (saved["obs"], tuple(saved["state"]), saved["logits"], saved["value"],
                   tuple(saved["next_state"]))
        if len(saved["envs"]) != len(envs) or len(saved["actions"]) != len(rngs):
            raise ValueError("its number of replicas differs")
        for env, snap in zip(envs, saved["envs"]):
            env.restore(snap)
        for rng, state in zip(rngs, saved["actions"]):
            rng.bit_generator.state = state
        agent.set_state(saved["agent"])  # last: it checks every shape before it changes any
    except (ValueError, KeyError, TypeError) as err:
        for env, snap in zip(envs, envs_before):
            env.restore(snap)
        for rng, state in zip(rngs, rngs_before):
            rng.bit_generator.state = state
        saver.reject(err)
        return None
    loop.update(saved["loop"])
    return carried


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (B, n_actions) logits (NaN rows for a diverging replica's
    non-finite logits: `sample` still draws, and the update after marks it diverged)."""
    with np.errstate(invalid="ignore", over="ignore"):
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
