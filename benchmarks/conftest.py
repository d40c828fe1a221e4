"""Fixtures of the benchmark suite: one results directory per session, reported at the end."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from benchmarks.store import Store


@pytest.fixture(scope="session")
def bench_store(pytestconfig, request):
    root = pytestconfig.getoption("--arith-results") or tempfile.mkdtemp(prefix="arithbench-")
    store = Store(Path(root))
    yield store
    records = list(store.records())
    if records:
        from reports import frame, html

        df, curves = frame.read(store.root)
        out = html.render(df, store.root / "report.html", curves=curves)
        reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.write_line(f"ArithBench report: {out}")


def pytest_generate_tests(metafunc):
    """Every benchmark that takes ``framework`` runs once per --frameworks entry."""
    if "framework" in metafunc.fixturenames:
        names = [f for f in metafunc.config.getoption("--frameworks").split(",") if f]
        metafunc.parametrize("framework", names)
