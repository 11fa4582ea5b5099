"""What the machine can do fast: CPU instruction-set features and the precision they suit.

Machines here differ: some CPUs have only AVX2 (bfloat16 autocast is then emulated and several
times slower than float32), others have AVX-512 bf16 / VNNI or AMX (bfloat16 matrix products in
hardware, 1.5-2x faster than float32 for the ResNet-18). Training and inference ask this module
instead of assuming one machine, and which device "auto" means (`resolve_device`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # int8 dot products in hardware


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def resolve_device(device: str) -> str:
    """The device to run on: "auto" is a GPU where there is one, the CPU elsewhere."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def cpu_has_bf16() -> bool:
    """True where the CPU multiplies bfloat16 in hardware (AVX-512 bf16 or AMX)."""
    return any(flag in cpu_flags() for flag in BF16_FLAGS)


def cpu_summary() -> str:
    """A short line naming the vector features that matter here, for logs and benchmarks."""
    flags = cpu_flags()
    names = [
        f
        for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
        if f in flags
    ]
    return " ".join(names) or "no AVX2"


def training_precision(device: str) -> str:
    """bf16 autocast on a GPU or a CPU with bf16 in hardware, float32 elsewhere."""
    if device.startswith("cuda") or cpu_has_bf16():
        return "bf16"
    return "fp32"


def cpu_has_int8() -> bool:
    """True where the CPU has int8 dot products in hardware (AVX-512 VNNI, AVX-VNNI or AMX) and
    PyTorch has its quantized x86 kernels."""
    if not any(flag in cpu_flags() for flag in INT8_FLAGS):
        return False
    import torch

    return bool({"x86", "fbgemm"} & set(torch.backends.quantized.supported_engines))


def inference_precision(device: str) -> str:
    """What the workers score in: bf16 autocast on a GPU and on a CPU with bf16 in hardware
    (AVX-512 bf16 or AMX), float32 elsewhere (AVX2 alone emulates bf16, 6x slower). int8 (VNNI,
    `cpu_has_int8`) is faster still but moves scores more (classifier.inference.AGREEMENT), so
    it is only used when asked for."""
    return "bf16" if device.startswith("cuda") or cpu_has_bf16() else "fp32"
