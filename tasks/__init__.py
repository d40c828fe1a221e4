"""What is learned: data, splits, protocol and metrics, in numpy only."""
from __future__ import annotations

from tasks.base import Task
from tasks.grid_world import GridWorld
from tasks.mnist_counting import MNISTAddition, MNISTCounting
from tasks.recurrent_arithmetic import RecurrentArithmetic
from tasks.sequential_mnist import SequentialMNIST
from tasks.static_arithmetic import StaticArithmetic
from tasks.text_to_number import TextToNumber

TASKS: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    if cls.name in TASKS:
        raise ValueError(f"task {cls.name!r} is already registered")
    TASKS[cls.name] = cls
    return cls


register(StaticArithmetic)
register(RecurrentArithmetic)
register(GridWorld)
register(MNISTCounting)
register(MNISTAddition)
register(TextToNumber)
register(SequentialMNIST)


def get(name: str) -> type[Task]:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]
