"""Throughput of vectorised training against the conventional one-seed loop.

Each case trains SEEDS seeds of one model as one program on the static protocol and
is timed by pytest-benchmark; `extra_info` carries seeds, steps, seed-steps/s,
samples/s and the ratio to `benchmarks.plain_loop` run in the same session.
The comparisons run with --throughput (they take minutes, so the test command leaves them
out); sizes: --throughput-seeds (64) and --throughput-steps (1000). docs/performance.md's
table is `pytest benchmarks/test_throughput.py --throughput --throughput-steps 3000
--benchmark-json FILE`.
"""
from __future__ import annotations

import pytest

from benchmarks import throughput

MODELS = ("nalu", "nau-nmu")


@pytest.fixture(scope="module")
def size(pytestconfig):
    """(seeds, steps): --throughput-seeds, --throughput-steps."""
    return (pytestconfig.getoption("--throughput-seeds"),
            pytestconfig.getoption("--throughput-steps"))


@pytest.fixture(scope="module")
def plain_loop_rate(pytestconfig, size):
    """seed-steps/s of the plain loop per model, measured once per session."""
    if not pytestconfig.getoption("--throughput"):
        pytest.skip("the comparisons with the plain loop run with --throughput (minutes)")
    pytest.importorskip("torch")
    return {model: throughput.plain_loop(model, size[1]) for model in MODELS}


@pytest.mark.parametrize("common_data", [False, True], ids=["own-data", "common-data"])
@pytest.mark.parametrize("model", MODELS)
def test_throughput(benchmark, plain_loop_rate, size, framework, model, common_data):
    from models import registry

    if registry.framework_missing(framework):
        pytest.skip(registry.framework_missing(framework))
    result = benchmark.pedantic(throughput.measure, args=(model, framework, *size),
                                kwargs={"common_data": common_data}, rounds=1, iterations=1)
    ratio = result["seed_steps_per_s"] / plain_loop_rate[model]
    benchmark.extra_info.update(result, plain_loop_seed_steps_per_s=plain_loop_rate[model],
                                ratio_to_plain_loop=ratio)
    assert result["seed_steps_per_s"] > 0


def test_throughput_of_one_program_across_ops_and_range_pairs(benchmark, size, framework):
    """nalu on add and mul at [Primer]'s nine range pairs, --throughput-seeds seeds each,
    as one program: configuration-seed-steps/s (issue 17 aims at 100,000 or more)."""
    from models import registry

    if registry.framework_missing(framework):
        pytest.skip(registry.framework_missing(framework))
    result = benchmark.pedantic(throughput.measure_program, args=("nalu", framework, *size),
                                rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    assert result["replicas"] == size[0] * 2 * 9
    assert result["configuration_seed_steps_per_s"] > 0
