"""The feed-forward tasks' loop (the static task): a stack of units trained on drawn
batches, evaluated on fixed sets (the first, interpolation, selects the model), with the
units' regulariser schedules and, for units that opt in, [iNALU]'s re-initialisation.
The loop itself is `models.engine.fit`; the trainer is ``models/<fw>/train.Trainer``.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from models import engine, reference, registry
from tasks.base import INIT_STREAM, ReplicaBatches


def eval_chunk(layers, replicas: int, budget_bytes: int) -> int:
    """Evaluation samples per forward pass so the widest activation stays in budget
    (NMU's product makes an (R, N, n_in, n_out) intermediate)."""
    widest = max(n_in * n_out if unit == "nmu" else n_in + n_out for unit, n_in, n_out in layers)
    return int(min(2000, max(64, budget_bytes // (4 * replicas * widest))))


def run_group(task, specs, progress=None) -> tuple[list[dict], float]:
    """The loop of the feed-forward tasks: one result per spec (see `benchmarks.runner`)."""
    first = specs[0]
    layers = task.layers(registry.parse_model(first.unit))
    seeds = [s.seed for s in specs]
    instances = [task.instance(s) for s in seeds]
    init = [(unit, registry.init_params(unit, n_in, n_out, [[s, INIT_STREAM, j] for s in seeds]))
            for j, (unit, n_in, n_out) in enumerate(layers)]
    eval_sets = {name: (x, np.stack([task.targets(inst, x.astype(np.float64))
                                     for inst in instances]))
                 for name, x in task.eval_inputs().items()}
    trainer = registry.framework_module(first.framework, "train").Trainer(
        init, lr=first.lr, device=first.device)
    cfg = engine.TrainConfig.of(first)
    # the re-initialisation applies to models with a unit that opts in (iNALU)
    rule = getattr(task, "reinit", None)
    opted = any(reference.UNITS[unit].reinit for unit, _, _ in layers)
    cfg = replace(cfg, eval_chunk=eval_chunk(layers, len(seeds), cfg.chunk_bytes),
                  reinit=rule if opted else None)
    batches = ReplicaBatches(task, instances, seeds, first.batch_size, first.common_data)
    n_in, n_out = layers[0][1], layers[-1][2]
    bytes_per_step = 4 * first.batch_size * (n_in * (1 if first.common_data else len(seeds))
                                             + n_out * len(seeds))

    def fresh(which, attempts):
        """Attempt a's weights of replica r, layer j: rng [seed_r, INIT_STREAM, j, a]."""
        return [registry.init_params(unit, n_in_j, n_out_j, [[seeds[r], INIT_STREAM, j, a]
                                                             for r, a in zip(which, attempts)])
                if reference.UNITS[unit].reinit else None
                for j, (unit, n_in_j, n_out_j) in enumerate(layers)]

    units = [u for u, _, _ in layers]
    xs_ys = lambda n: dict(zip(("xs", "ys"), batches(n)))  # noqa: E731
    evaluate = lambda: {name: trainer.errors(*data, chunk=cfg.eval_chunk)  # noqa: E731
                        for name, data in eval_sets.items()}
    result = engine.fit(trainer, units, xs_ys, evaluate, cfg, len(seeds),
                        lams=lambda steps: engine.regulariser_weights(units, cfg, steps),
                        chunk=engine.chunk_steps(cfg, bytes_per_step),
                        first_divisor=engine.FIRST_CHUNK_DIVISOR, progress=progress,
                        fresh=fresh)
    metrics = lambda r: task.metrics(result.seed(  # noqa: E731
        r, instance=instances[r],
        eval_sets={name: (x, y[r]) for name, (x, y) in eval_sets.items()}))
    return engine.results(result, metrics), result.train_seconds
