"""The instruction set each framework dispatches to, as records carry it."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from models import cpu, registry

AVX2 = frozenset({"sse4_1", "avx", "avx2", "fma"})
AVX512 = AVX2 | {"avx512f", "avx512bw", "avx512vl", "avx512dq"}


@pytest.mark.parametrize("flags, environ, expected", [
    (AVX512, {}, "avx512_core"),
    (AVX512 | {"avx512_vnni"}, {}, "avx512_core_vnni"),
    (AVX2, {}, "avx2"),
    (AVX2 - {"fma"}, {}, "avx"),
    (frozenset({"sse4_1"}), {}, "sse41"),
    (frozenset(), {}, "unknown"),
    (AVX512, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "avx2"),
    (AVX2, {"ONEDNN_MAX_CPU_ISA": "avx512_core"}, "avx2"),
    (AVX512, {"TF_ENABLE_ONEDNN_OPTS": "0"}, "oneDNN off"),
])
def test_onednn_isa_follows_flags_and_caps(flags, environ, expected):
    assert cpu.onednn_isa(flags, environ) == expected


def test_cpuinfo_field_reads_the_first_cpu(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx avx2\n\n"
                    "processor\t: 1\nmodel name\t: Other CPU\n")
    assert cpu.cpuinfo_field(("model name",), info) == "Some CPU"
    assert cpu.cpuinfo_field(("flags",), info) == "fpu avx avx2"
    assert cpu.cpuinfo_field(("flags",), tmp_path / "missing") is None


VERBOSE_NAMES = {"avx512_core_amx": "AMX", "avx512_core_bf16": "bfloat16",
                 "avx512_core_vnni": "DL Boost", "avx512_core": "AVX-512", "avx2_vnni": "AVX2",
                 "avx2": "AVX2", "avx": "AVX", "sse41": "SSE4.1"}


@pytest.mark.skipif(registry.framework_missing("tf") is not None, reason="tf not installed")
def test_onednn_isa_is_what_tensorflow_reports():
    """oneDNN's verbose log names the set it dispatched a matmul to."""
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    out = subprocess.run([sys.executable, "-c", "import tensorflow as tf; "
                          "x = tf.ones((32, 32)); print(float(tf.reduce_sum(x @ x)))"],
                         env=env, capture_output=True, text=True, timeout=120)
    reported = re.search(r"isa:([^,\n]+)", out.stdout + out.stderr)
    if reported is None:
        pytest.skip("this TensorFlow build logs no oneDNN dispatch")
    derived = cpu.onednn_isa(environ={})
    assert VERBOSE_NAMES[derived] in reported.group(1), (derived, reported.group(1))


@pytest.mark.skipif(registry.framework_missing("torch") is not None,
                    reason="torch not installed")
def test_torch_capability_is_the_dispatch_in_use():
    """Capped by ATEN_CPU_CAPABILITY, torch dispatches to (and reports) the plain kernels."""
    code = "from models import cpu; print(cpu.capability('torch'))"
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip() == "DEFAULT"


def test_other_frameworks_have_none():
    assert cpu.capability("numpy") is None


@pytest.mark.parametrize("framework", registry.FRAMEWORKS)
def test_records_name_the_capability(framework):
    from benchmarks import records

    machine = records.environment(framework)["machine"]
    expected = None if registry.framework_missing(framework) else cpu.capability(framework)
    assert machine["cpu_capability"] == expected
    assert machine["cpu_model"]
