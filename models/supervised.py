"""The feed-forward tasks' loop (the static task): a stack of units trained on drawn
batches, evaluated on fixed sets (the first, interpolation, selects the model), with the
units' regulariser schedules and, for units that opt in, [iNALU]'s re-initialisation.
Under a task's ``protocol`` "primer" the units train as [Primer]'s code trains them
(`models.primer`: its schedules, initialisation, gradient clipping and re-initialisation,
and no divergence rule); under "explainer" as the explainer's code trains them
(`models.explainer`: its initialisation, one fixed full-batch training set per seed, its
half-sum loss, no divergence rule and the model after the last step, not a selected one).
The loop itself is `models.engine.fit`; the trainer is
``models/<fw>/train.Trainer``.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from models import engine, explainer, primer, reference, registry
from tasks.base import INIT_STREAM, ReplicaBatches


def eval_chunk(layers, replicas: int, budget_bytes: int) -> int:
    """Evaluation samples per forward pass so the widest activation stays in budget
    (NMU's product makes an (R, N, n_in, n_out) intermediate)."""
    widest = max(n_in * n_out if unit == "nmu" else n_in + n_out for unit, n_in, n_out in layers)
    return int(min(2000, max(64, budget_bytes // (4 * replicas * widest))))


def replica_tasks(task, specs) -> list:
    """One task per spec: ``task`` where the spec has its parameters, else one made for
    each other set of parameters (a program across ops and range pairs)."""
    made = {specs[0].task_params: task}
    for spec in specs:
        if spec.task_params not in made:
            made[spec.task_params] = type(task)(**spec.params)
    return [made[spec.task_params] for spec in specs]


def evaluation_groups(tasks_, instances) -> dict[str, list[tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]]]:
    """Per evaluation set, (x, replicas, their targets) for each distinct input set x:
    replicas whose tasks draw the same inputs (every op of a range pair) share them."""
    distinct = {id(t): t for t in tasks_}
    inputs = {key: t.eval_inputs() for key, t in distinct.items()}
    out: dict[str, list] = {}
    for name in inputs[id(tasks_[0])]:
        sets: list[np.ndarray] = []  # the distinct input sets; each task's index into them
        which = {}
        for key in distinct:
            x = inputs[key][name]
            which[key] = next((i for i, seen in enumerate(sets) if np.array_equal(seen, x)),
                              len(sets))
            if which[key] == len(sets):
                sets.append(x)
        out[name] = []
        for i, x in enumerate(sets):
            rows = [r for r, t in enumerate(tasks_) if which[id(t)] == i]
            out[name].append((x, np.array(rows), np.stack([
                tasks_[r].targets(instances[r], x.astype(np.float64)) for r in rows])))
    return out


def own_inputs(groups, replicas: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Each replica's evaluation inputs (R, N, n_in) and targets (R, N, n_out) from the
    input sets that replicas share."""
    x0, _, y0 = groups[0]
    xs = np.empty((replicas, *x0.shape), dtype=np.float32)
    ys = np.empty((replicas, *y0.shape[1:]), dtype=y0.dtype)
    for x, rows, y in groups:
        xs[rows], ys[rows] = x, y
    return xs, ys, True


def run_group(task, specs, progress=None) -> tuple[list[dict], float]:
    """The loop of the feed-forward tasks: one result per spec (see `benchmarks.runner`).
    The specs may differ in the task's `program_params` (op, range pair): each replica
    then has its own task, targets and evaluation sets, and all train as one network."""
    first = specs[0]
    layers = task.layers(registry.parse_model(first.unit))
    seeds = [s.seed for s in specs]
    tasks_ = replica_tasks(task, specs)
    instances = [t.instance(s) for t, s in zip(tasks_, seeds)]
    as_primer = getattr(task, "protocol", None) == "primer"
    as_explainer = getattr(task, "protocol", None) == "explainer"
    settings = [primer.SETTINGS.get(unit, primer.Unit("")) if as_primer else None
                for unit, _, _ in layers]
    init_fn = primer.init if as_primer else explainer.init if as_explainer else None
    init = [(unit, registry.init_params(unit, n_in, n_out, [[s, INIT_STREAM, j] for s in seeds],
                                        init_fn))
            for j, (unit, n_in, n_out) in enumerate(layers)]
    eval_groups = evaluation_groups(tasks_, instances)
    clip = next((u.clip_grad for u in settings if u and u.clip_grad is not None), None)
    scale = explainer.loss_scale(first.batch_size, layers[-1][2]) if as_explainer else 1.0
    trainer = registry.framework_module(first.framework, "train").Trainer(
        init, lr=first.lr, device=first.device, clip_grad=clip, loss_scale=scale)
    cfg = engine.TrainConfig.of(first)
    # the re-initialisation applies to the layers whose unit opts in (iNALU)
    rule = getattr(task, "reinit", None)
    opted = [u.reinit if as_primer else reference.UNITS[unit].reinit
             for u, (unit, _, _) in zip(settings, layers)]
    cfg = replace(cfg, eval_chunk=eval_chunk(layers, len(seeds), cfg.chunk_bytes),
                  reinit=rule if any(opted) else None)
    if as_explainer:  # drawn once; a step costs no data, so a chunk is an evaluation interval
        batches = explainer.FixedBatches(tasks_, instances, seeds, first.batch_size)
        bytes_per_step = 0
    else:
        batches = ReplicaBatches(tasks_, instances, seeds, first.batch_size, first.common_data)
        n_in, n_out = layers[0][1], layers[-1][2]
        bytes_per_step = 4 * first.batch_size * (n_in * (1 if first.common_data else len(seeds))
                                                 + n_out * len(seeds))

    def fresh(which, attempts):
        """Attempt a's weights of replica r, layer j: rng [seed_r, INIT_STREAM, j, a]."""
        return [registry.init_params(unit, n_in_j, n_out_j, [[seeds[r], INIT_STREAM, j, a]
                                                             for r, a in zip(which, attempts)],
                                     init_fn)
                if opted[j] else None for j, (unit, n_in_j, n_out_j) in enumerate(layers)]

    # One input set (a single configuration): shared by every replica. Several (range
    # pairs): each replica's own, stacked, so each runs on its own set only.
    eval_data = {name: (groups[0][0], groups[0][2], False) if len(groups) == 1 else
                 own_inputs(groups, len(seeds)) for name, groups in eval_groups.items()}
    latest: dict[str, np.ndarray] = {}  # the last evaluation ([Primer]'s iNALU gate reads it)

    if as_explainer:  # the training loss, as the explainer prints it (after the selecting set)
        eval_data["train"] = (batches.x, batches.y, True)

    def evaluate():
        latest.update({name: trainer.errors(x, y, chunk=cfg.eval_chunk, own=own)
                       for name, (x, y, own) in eval_data.items()})
        return dict(latest)

    def own_sets(r: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Replica r's evaluation inputs and targets."""
        return {name: next((x, y[list(rows).index(r)]) for x, rows, y in groups if r in rows)
                for name, groups in eval_groups.items()}

    units = [u for u, _, _ in layers]
    xs_ys = lambda n: dict(zip(("xs", "ys"), batches(n)))  # noqa: E731
    if as_primer:
        ops = [t.params["op"] for t in tasks_]
        lams = lambda steps: primer.weights(units, ops, steps,  # noqa: E731
                                            latest.get(next(iter(eval_data))))
    else:
        lams = lambda steps: engine.regulariser_weights(units, cfg, steps)  # noqa: E731
    result = engine.fit(trainer, units, xs_ys, evaluate, cfg, len(seeds), lams=lams,
                        chunk=engine.chunk_steps(cfg, bytes_per_step),
                        first_divisor=1 if as_explainer else engine.FIRST_CHUNK_DIVISOR,
                        progress=progress, fresh=fresh,
                        watch=() if as_primer or as_explainer else None,
                        streams=batches.rngs, carry=latest)
    if as_explainer:  # no selection: every replica's model is the last step's
        result.best = trainer.params()
        result.best_index[:] = result.evaluated - 1
        result.extra["train_size"] = np.full(len(seeds), first.batch_size)
    metrics = lambda r: tasks_[r].metrics(result.seed(  # noqa: E731
        r, instance=instances[r], eval_sets=own_sets(r)))
    return engine.results(result, metrics), result.train_seconds
