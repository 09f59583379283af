"""The CPU a figure was measured on: its model name and whether it has VNNI (int8 dot products; ONNX Runtime's
int8 kernels, and so an INT8 model's accuracy, differ without it). Used by every benchmark and by the manifest."""

from __future__ import annotations

import platform
from pathlib import Path


def _cpuinfo() -> tuple[str, str]:
    name, flags = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not name:
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = line
    except OSError:
        pass
    return name, flags


def cpu_name() -> str:
    """``AMD EPYC``, ``Intel(R) Xeon(R) Processor``...; the platform's name where /proc/cpuinfo is absent."""
    return _cpuinfo()[0] or platform.processor() or platform.machine()


def cpu_description() -> str:
    """The name plus VNNI or not, e.g. ``AMD EPYC (no VNNI)``; just the name off Linux x86 (unknown there)."""
    name, flags = _cpuinfo()
    if not flags:
        return cpu_name()
    return f"{name or cpu_name()} ({'VNNI' if 'vnni' in flags.split() or 'avx512_vnni' in flags else 'no VNNI'})"
