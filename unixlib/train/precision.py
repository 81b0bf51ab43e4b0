"""Which compute precision a run trains in: ``TrainConfig.mixed_precision`` resolved per device.

``auto`` means bf16 autocast where the hardware computes bf16 natively and fp32 elsewhere:

* CUDA: bf16 (every GPU the paper profile targets has bf16 tensor cores);
* CPU: bf16 only when the CPU has bf16 instructions (x86 ``avx512_bf16`` / ``amx_bf16``, Arm
  ``bf16``, read from ``/proc/cpuinfo``). On those, oneDNN's bf16 matmul runs 1.3-4x faster than
  fp32 (tiny-preset shapes to 1024^3), and a smoke training step 1.6-1.8x faster (measured on the
  two-core AMD EPYC development machine, ``python -m unixlib.bench``). CPUs without them
  emulate bf16 and run autocast several times *slower* than fp32, so ``auto`` stays fp32;
* Apple MPS: fp32.

The choice is printed at the start of every run and written into the exported model's card
(``precision``); notebook 06 keys its reuse of finished runs on it. bf16 and fp32 runs of the
same seed give different numbers, each reproducible on its own kind of machine.
"""

from __future__ import annotations

import contextlib
import functools
import platform
from pathlib import Path

import torch

MODES = ("auto", "bf16", "no")
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


@functools.cache
def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU has bf16 arithmetic instructions (Linux: the ``flags`` / ``Features``
    lines of ``cpuinfo``; other systems: False, i.e. fp32)."""
    path = Path(cpuinfo)
    if platform.system() != "Linux" or not path.is_file():
        return False
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features") and CPU_BF16_FLAGS & set(value.split()):
            return True
    return False


def uses_bf16(mode: str, device: torch.device) -> bool:
    """Resolve ``mixed_precision`` (``auto`` | ``bf16`` | ``no``) for ``device`` (module doc)."""
    if mode not in MODES:
        raise ValueError(f"mixed_precision must be one of {MODES}, got {mode!r}")
    if mode != "auto":
        return mode == "bf16"
    if device.type == "cuda":
        return True
    return device.type == "cpu" and cpu_has_native_bf16()


def autocast(mode: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when :func:`uses_bf16`, else a no-op context."""
    if uses_bf16(mode, device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(mode: str, device: torch.device) -> str:
    """``"bf16 autocast"`` or ``"fp32"``, for logs and manifests."""
    return "bf16 autocast" if uses_bf16(mode, device) else "fp32"
