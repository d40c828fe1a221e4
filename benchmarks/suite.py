"""The matrix (tasks x units x frameworks x seeds) and the budgets it runs at."""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, replace

import numpy as np

import tasks
from benchmarks.records import RunSpec
from models import primer, registry


@dataclass(frozen=True)
class Budget:
    name: str
    steps: int
    eval_interval: int
    seeds: int  # default number of seeds
    description: str
    batch_size: int = 128
    lr: float = 1e-3
    unit_lr: bool = False  # each unit at the lr [Primer] trains it at (models.primer.lr)
    tasks: tuple[str, ...] | None = None  # the tasks it is defined for (None: every task)
    matrix: bool = False  # Task.defaults' parameter matrix holds when --units are given too
    # (first layer or cell, lr): models whose published lr differs from ``lr``
    model_lr: tuple[tuple[str, float], ...] = ()

    def lr_for(self, model: str) -> float:
        """The learning rate of a model at this budget (the last layer's own lr wins)."""
        own = dict(self.model_lr).get(model.split("-")[0])
        if own is not None:
            return own
        if self.unit_lr:
            own = [primer.lr(u) for u in registry.parse_model(model) if primer.lr(u) is not None]
            if own:
                return own[-1]
        return self.lr

    def for_task(self, cls) -> Budget:
        """This budget as the task sets it (``Task.budgets``)."""
        return replace(self, **cls.budgets.get(self.name, {}))

    @property
    def schedule_scale(self) -> float:
        """Regulariser schedules are published for 5e6 steps; shorter budgets shrink them."""
        return min(1.0, self.steps / PAPER_STEPS)


PAPER_STEPS = 5_000_000
BUDGETS = {
    b.name: b
    for b in (
        Budget("smoke", 5_000, 250, 8, "seconds per configuration; CI and `pytest benchmarks/`",
               lr=5e-3),
        Budget("quick", 15_000, 1_000, 8, "minutes for the whole suite; the README's command",
               lr=5e-3),
        Budget("paper", PAPER_STEPS, 1_000, 100, "the published protocol [NAU]: 5e6 steps, "
               "100 seeds"),
        Budget("primer", 50_000, 1_000, 25, "[Primer]'s single-module benchmark as its code "
               "runs it: the units it compares on input size 2, nine range pairs, "
               "add/sub/mul/div, 25 seeds, each unit's settings (models/primer.py); "
               "static_arithmetic only", unit_lr=True,
               tasks=("static_arithmetic",), matrix=True),
        Budget("mclstm", 2_000_000, 1_000, 100, "the MC-LSTM authors' recurrent arithmetic "
               "protocol (docs/recurrent-protocol.md): table-2 models on add/sub/mul, 2e6 "
               "steps, 100 seeds, lr 1e-3 (LSTM and MC-LSTM 1e-2); recurrent_arithmetic only",
               tasks=("recurrent_arithmetic",), matrix=True,
               model_lr=(("lstm", 1e-2), ("mclstm", 1e-2))),
        Budget("explainer", 50_000, 1_000, 100, "the explainer's experiment as its code runs "
               "it: NALU -> NALU on 10 inputs, a + b, a - b, a * b, a / b, a^2, sqrt(a), one "
               "fixed full batch of 10,000, lr 0.1, 100 seeds (docs/explainer-protocol.md); "
               "static_arithmetic only", batch_size=10_000, lr=0.1,
               tasks=("static_arithmetic",), matrix=True),
    )
}

class SuiteError(ValueError):
    """Bad suite input: the message names the value and the accepted ones."""


def get_budget(name: str) -> Budget:
    if name not in BUDGETS:
        raise SuiteError(f"unknown budget {name!r}; known: {', '.join(BUDGETS)}")
    return BUDGETS[name]


MAX_SEEDS = 10_000  # seeds per command: 100x the published protocol's 100
MAX_SEED = 2**32 - 1


def _bounded(text: str, largest: int, count: int) -> None:
    """Refuse before expanding: 0-99999999 would take seconds and GBs to list."""
    if largest > MAX_SEED:
        raise SuiteError(f"bad --seeds {text!r}: seeds go up to {MAX_SEED:,}")
    if count > MAX_SEEDS:
        raise SuiteError(f"bad --seeds {text!r}: more than {MAX_SEEDS:,} seeds; at most "
                         f"{MAX_SEEDS:,} per command")


def parse_seeds(text: str) -> list[int]:
    """``0-9``, ``3``, ``0,4,7`` or ``0-4,10-14`` -> sorted unique seeds."""
    seeds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                low, high = (int(v) for v in part.split("-", 1))
                if low < 0 or high < low:
                    raise ValueError
                _bounded(text, high, len(seeds) + high - low + 1)
                seeds.update(range(low, high + 1))
            else:
                value = int(part)
                if value < 0:
                    raise ValueError
                _bounded(text, value, len(seeds) + 1)
                seeds.add(value)
        except SuiteError:
            raise
        except ValueError:
            raise SuiteError(f"bad seed range {text!r}; expected e.g. 0-9, 3 or 0,4,7 "
                             f"(non-negative integers, low <= high)") from None
    return sorted(seeds)


def split_names(text: str | None, known, what: str) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise SuiteError(f"empty {what} list; known: {', '.join(known)}")
    return names


def expand(task_names: list[str], models: list[str] | None, frameworks: list[str],
           seeds: list[int] | None, budget: Budget, task_grid: dict[str, list] | None = None,
           common_data: bool = False, steps: int | None = None,
           device: str = "cpu") -> list[RunSpec]:
    """Every (task params, model, framework, seed); validates every name first.

    ``models=None`` takes each task's defaults (``Task.defaults``); ``seeds=None`` the
    budget's number of seeds as the task sets it. A budget with ``matrix`` keeps the
    defaults' task parameters when models are given; one defined for some tasks only
    (``Budget.tasks``) leaves the others out, and refuses a list with none of them.
    """
    for fw in frameworks:
        registry.check_framework(fw)
    task_grid = task_grid or {}
    if budget.tasks is not None:
        for name in task_names:
            tasks.get(name)
        task_names = [n for n in task_names if n in budget.tasks]
        if not task_names:
            raise SuiteError(f"budget {budget.name!r} is defined for task(s) "
                             f"{', '.join(budget.tasks)} only")
    specs = []
    for name in task_names:
        cls = tasks.get(name)
        b = budget.for_task(cls)
        grid = {k: v for k, v in task_grid.items() if k in cls.parameters}
        if models is None:
            plan = cls.defaults(grid, b.name)
        elif b.matrix:
            fixed_sets = list({repr(f): f for f, _ in cls.defaults(grid, b.name)}.values())
            plan = [(fixed, tuple(models)) for fixed in fixed_sets]
        else:
            plan = [({}, tuple(models))]
        for fixed, task_models in plan:
            for key in sorted(set(fixed) & set(grid)):
                # a budget never overrides --param silently (one of its values selects)
                if not any(_same_value(fixed[key], v) for v in grid[key]):
                    raise SuiteError(f"--param {key}={_shown(grid[key])} conflicts with "
                                     f"budget {b.name!r}, which sets {key}={fixed[key]} for "
                                     f"{name}; drop the --param or choose another budget")
            sub = {**grid, **{k: [v] for k, v in fixed.items()}}
            keys = list(sub)
            for values in itertools.product(*(sub[k] for k in keys)):
                task = cls(**dict(zip(keys, values)))
                tb = replace(b, **task.budget(b.name))  # a protocol's per-parameter budget
                for model in task_models:
                    task.check_model(model)
                    for fw, seed in itertools.product(frameworks,
                                                      seeds or range(tb.seeds)):
                        specs.append(_spec(task, model, fw, seed, b, steps, common_data,
                                           device))
    return specs


def _spec(task, model: str, framework: str, seed: int, budget: Budget, steps: int | None,
          common_data: bool, device: str) -> RunSpec:
    """One run of ``task`` at ``budget`` as the task sets it (``budget.for_task`` already
    applied), the steps overridden where ``steps`` is given."""
    tb = replace(budget, **task.budget(budget.name))  # a protocol's per-parameter budget
    return RunSpec.make(task.params, task=task.name, unit=model, framework=framework,
                        seed=seed, budget=tb.name, steps=steps or tb.steps,
                        batch_size=tb.batch_size, lr=tb.lr_for(model),
                        eval_interval=tb.eval_interval, schedule_scale=tb.schedule_scale,
                        common_data=common_data, device=device)


@dataclass(frozen=True)
class Stages:
    """Runs in the order they must train: every run of ``runs[k]`` after all of
    ``runs[k - 1]`` have finished (a barrier); ``references[id]``: the runs a run is
    scored against (`Task.references`), each in an earlier stage."""

    runs: tuple[tuple[RunSpec, ...], ...]
    references: dict[str, tuple[RunSpec, ...]]

    @property
    def all(self) -> list[RunSpec]:
        return [s for stage in self.runs for s in stage]


def stages(specs: list[RunSpec], steps: int | None = None) -> Stages:
    """``specs`` and the runs they are scored against (`Task.references`), in stages: a
    run's references are made at its budget, framework, device and data setting (the
    steps overridden where ``steps`` is), deduplicated (the runs of many configurations
    share one reference set, and a reference also asked for directly is trained once),
    and each stands one stage before the first run that needs it."""
    made: dict[tuple, tuple[RunSpec, ...]] = {}  # one task per configuration and setting
    references: dict[str, tuple[RunSpec, ...]] = {}
    depth: dict[RunSpec, int] = {}

    def refs_of(spec: RunSpec) -> tuple[RunSpec, ...]:
        key = (spec.task, spec.task_params, spec.budget, spec.framework, spec.device,
               spec.common_data)
        if key not in made:
            cls = tasks.get(spec.task)
            b = get_budget(spec.budget).for_task(cls)
            out = []
            for params, model, seeds in cls(**spec.params).references():
                ref = cls(**params)
                ref.check_model(model)
                out.extend(_spec(ref, model, spec.framework, seed, b, steps, spec.common_data,
                                 spec.device) for seed in seeds)
            made[key] = tuple(out)
        return made[key]

    def place(spec: RunSpec, path: tuple[RunSpec, ...]) -> int:
        if spec in path:
            raise SuiteError(f"task {spec.task!r}: a run is among its own references "
                             f"(Task.references must not lead back to it)")
        if spec not in depth:
            refs = refs_of(spec)
            if refs:
                references[spec.id] = refs
            depth[spec] = 1 + max((place(r, (*path, spec)) for r in refs), default=-1)
        return depth[spec]

    for spec in specs:
        place(spec, ())
    runs = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for spec, k in depth.items():  # dicts keep the order the specs were first placed in
        runs[k].append(spec)
    return Stages(tuple(tuple(stage) for stage in runs), references)


def _same_value(a, b) -> bool:
    """Equal task parameter values: numbers as floats, ranges whatever their nesting
    ([-2, 2] and ((-2.0, 2.0),)), anything else as itself."""
    try:
        x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    except (TypeError, ValueError):
        return a == b
    return x.shape == y.shape and bool(np.array_equal(x, y))


def groups(specs: list[RunSpec], max_replicas: int = 1024) -> list[list[RunSpec]]:
    """Specs that train as one program, in chunks of at most max_replicas: equal but for
    the seed and, where their task allows (`Task.program_params`: the static task's op and
    range pair) and the data is each seed's own, those parameters. A program's specs are
    ordered by configuration, then seed."""
    by_key: dict[RunSpec, list[RunSpec]] = {}
    for spec in specs:
        varying = () if spec.common_data else tasks.get(spec.task).program_params
        by_key.setdefault(spec.program_key(varying), []).append(spec)
    out = []
    for members in by_key.values():
        members.sort(key=lambda s: (json.dumps(s.to_dict()["task_params"], sort_keys=True),
                                    s.seed))
        out.extend(members[i:i + max_replicas] for i in range(0, len(members), max_replicas))
    return out


def _shown(values: list) -> str:
    """A --param's values as given: 100, or 1,2 for a list."""
    return ",".join(str(v) for v in values)
