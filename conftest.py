"""pytest options shared by the tests and the benchmark suite."""
from __future__ import annotations

import platform

import pytest

from models import registry


def pytest_addoption(parser):
    group = parser.getgroup("arithbench")
    group.addoption("--frameworks", default="torch,tf",
                    help="frameworks the benchmark suite runs (default: torch,tf)")
    group.addoption("--arith-results", default=None,
                    help="results directory for `pytest benchmarks/` (default: a temp dir)")
    group.addoption("--throughput", action="store_true",
                    help="also run the throughput comparisons with the plain one-seed loop "
                         "(minutes; docs/performance.md)")
    group.addoption("--throughput-steps", type=int, default=1000,
                    help="training steps per throughput case (default: 1000)")
    group.addoption("--throughput-seeds", type=int, default=64,
                    help="seeds trained together per throughput case (default: 64)")


@pytest.fixture(scope="session")
def frameworks(pytestconfig) -> list[str]:
    names = [f for f in pytestconfig.getoption("--frameworks").split(",") if f]
    for name in names:
        registry.check_framework(name)
    return names


def pytest_benchmark_update_machine_info(config, machine_info):
    """Library versions next to pytest-benchmark's machine description."""
    from benchmarks.runner import environment

    machine_info["arithbench"] = {fw: environment(fw)["versions"] for fw in registry.FRAMEWORKS}
    machine_info["python_build"] = platform.python_build()
