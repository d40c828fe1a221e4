"""The vector instruction set each framework's CPU kernels dispatch to, which decides
whether two machines give the same numbers bit for bit (docs/failures.md, "Across
machines"). Read without importing TensorFlow; torch is asked directly."""
from __future__ import annotations

import os
from pathlib import Path

# oneDNN's instruction sets, best first, each with the CPU flags it needs (oneDNN's
# ``cpu_isa_t``); it dispatches to the first one the CPU has, unless capped.
ONEDNN_ISAS = (
    ("avx512_core_amx", ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni",
                         "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")),
    ("avx512_core_bf16", ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni",
                          "avx512_bf16")),
    ("avx512_core_vnni", ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni")),
    ("avx512_core", ("avx512f", "avx512bw", "avx512vl", "avx512dq")),
    ("avx2_vnni", ("avx2", "fma", "avx_vnni")),
    ("avx2", ("avx2", "fma")),
    ("avx", ("avx",)),
    ("sse41", ("sse4_1",)),
)
CPUINFO = Path("/proc/cpuinfo")


def cpuinfo_field(names: tuple[str, ...], cpuinfo: Path = CPUINFO) -> str | None:
    """The first CPU's value of the first of ``names`` in ``cpuinfo`` (None without)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in names:
            return value.strip()
    return None


def onednn_isa(flags: frozenset[str] | None = None, environ=os.environ) -> str:
    """The set TensorFlow's oneDNN kernels (matmul, convolution) dispatch to: the best of
    `ONEDNN_ISAS` the CPU's flags allow, capped by ``ONEDNN_MAX_CPU_ISA``; "oneDNN off"
    where ``TF_ENABLE_ONEDNN_OPTS=0``; "unknown" without flags. TensorFlow says it only
    in oneDNN's verbose log (``ONEDNN_VERBOSE=1``: ``isa:``), which a test compares with
    this. Its other CPU kernels are compiled for one set and do not vary by machine."""
    if environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip().lower() in ("0", "false"):
        return "oneDNN off"
    if flags is None:
        flags = frozenset((cpuinfo_field(("flags", "Features")) or "").split())
    names = [name for name, _ in ONEDNN_ISAS]
    cap = environ.get("ONEDNN_MAX_CPU_ISA", "").strip().lower()
    allowed = names[names.index(cap):] if cap in names else names
    for name, needs in ONEDNN_ISAS:
        if name in allowed and flags.issuperset(needs):
            return name
    return "unknown"


def capability(framework: str) -> str | None:
    """torch: ``torch.backends.cpu.get_cpu_capability()`` (DEFAULT, AVX2, AVX512, ...;
    ``ATEN_CPU_CAPABILITY`` caps it); its vectorised exp and log differ in the last bits
    between sets. tf: `onednn_isa`. None for another framework."""
    if framework == "torch":
        import torch

        return str(torch.backends.cpu.get_cpu_capability())
    if framework == "tf":
        return onednn_isa()
    return None
