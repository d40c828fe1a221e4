"""The matrix (tasks x units x frameworks x seeds) and the budgets it runs at."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import tasks
from benchmarks.spec import RunSpec
from models import registry


@dataclass(frozen=True)
class Budget:
    name: str
    steps: int
    eval_interval: int
    seeds: int  # default number of seeds
    description: str
    batch_size: int = 128
    lr: float = 1e-3

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
    )
}

class SuiteError(ValueError):
    """Bad suite input: the message names the value and the accepted ones."""


def get_budget(name: str) -> Budget:
    if name not in BUDGETS:
        raise SuiteError(f"unknown budget {name!r}; known: {', '.join(BUDGETS)}")
    return BUDGETS[name]


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
                seeds.update(range(low, high + 1))
            else:
                value = int(part)
                if value < 0:
                    raise ValueError
                seeds.add(value)
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
    budget's number of seeds as the task sets it.
    """
    for fw in frameworks:
        registry.check_framework(fw)
    task_grid = task_grid or {}
    specs = []
    for name in task_names:
        cls = tasks.get(name)
        b = budget.for_task(cls)
        grid = {k: v for k, v in task_grid.items() if k in cls.parameters}
        plan = ([({}, tuple(models))] if models is not None else cls.defaults(grid, b.name))
        for fixed, task_models in plan:
            sub = {**grid, **{k: [v] for k, v in fixed.items()}}
            keys = list(sub)
            for values in itertools.product(*(sub[k] for k in keys)):
                task = cls(**dict(zip(keys, values)))
                for model in task_models:
                    task.check_model(model)
                    for fw, seed in itertools.product(frameworks,
                                                      seeds or range(b.seeds)):
                        specs.append(RunSpec.make(
                            task.params, task=name, unit=model, framework=fw, seed=seed,
                            budget=b.name, steps=steps or b.steps, batch_size=b.batch_size,
                            lr=b.lr, eval_interval=b.eval_interval,
                            schedule_scale=b.schedule_scale, common_data=common_data,
                            device=device))
    return specs


def groups(specs: list[RunSpec], max_replicas: int = 256) -> list[list[RunSpec]]:
    """Specs that differ only by seed, in chunks of at most max_replicas."""
    by_key: dict[RunSpec, list[RunSpec]] = {}
    for spec in specs:
        by_key.setdefault(spec.group_key, []).append(spec)
    out = []
    for members in by_key.values():
        members.sort(key=lambda s: s.seed)
        out.extend(members[i:i + max_replicas] for i in range(0, len(members), max_replicas))
    return out
