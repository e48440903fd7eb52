"""One numeric path on every x86-64 CPU: the kernels MKL, oneDNN, ATen, OpenBLAS and numpy run.

Each of these libraries picks its kernels by the CPU it finds (AVX2, AVX-512, AMX...), and the
kernels sum floats in different orders: the last bits differ, and training amplifies them until a
trained claim moves as much as with another seed. Capping every library at AVX2, a level every
x86-64 machine of the last decade has, Intel and AMD alike, gives the same bits everywhere:

| variable | value | library |
|---|---|---|
| ``MKL_CBWR`` | ``AVX2`` | MKL (torch's matmul, and ``torch.exp``/``log`` through VML): conditional numerical reproducibility |
| ``ONEDNN_MAX_CPU_ISA`` | ``AVX2`` | oneDNN (torch's convolutions) |
| ``ATEN_CPU_CAPABILITY`` | ``avx2`` | ATen's own vectorized kernels (activations, reductions) |
| ``OPENBLAS_CORETYPE`` | ``Haswell`` | numpy/scipy's OpenBLAS (matmul, SVD, eigh); a value the machine sets is kept |
| ``NPY_DISABLE_CPU_FEATURES`` | ``X86_V4 AVX512_ICL AVX512_SPR`` | numpy's own SIMD loops (``exp``, ``log``...) |

``MKL_CBWR=COMPATIBLE`` (SSE2) would also match vendors MKL does not know, but measured on this
project's machines it made a 512x784 matmul 2.4x slower than ``AVX2`` (AVX2 itself costs 1.6x
against AVX-512); the thread counts stay fixed too (``shared.runtime.set_threads``), since MKL and
ATen split sums by thread.

:func:`pin` runs when ``shared`` is first imported, so every entry point (runner, DVC stage,
tests, golden copies, a notebook's setup cell, cluster jobs) fixes the path before torch or numpy
compute anything; the runner and the tests also hand the variables to the kernels they start, and
the project's Jupyter kernels carry them in their kernel spec (numpy and OpenBLAS read theirs when
they load). ``PAPERSUITE_NATIVE_KERNELS=1`` opts out for speed: the values then depend on the CPU,
and ``run.json`` and the scorecard say so. Off x86-64 (Apple silicon, ARM servers) nothing is
pinned: the kernels differ anyway, and the regression tests compare verdicts there, not values.
"""
from __future__ import annotations

import os
import platform
from typing import Any, MutableMapping

NATIVE_ENV = "PAPERSUITE_NATIVE_KERNELS"
X86 = ("x86_64", "amd64", "i686", "i386")
PINNED: dict[str, str] = {
    "MKL_CBWR": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
}
# set only when the machine does not: some machines set it because older OpenBLAS builds compute
# wrong results on their CPU, and a value chosen for correctness wins
PINNED_IF_UNSET: dict[str, str] = {"OPENBLAS_CORETYPE": "Haswell"}
VARIABLES = (*PINNED, *PINNED_IF_UNSET)


def native_requested(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Whether the user opted out of pinning (``PAPERSUITE_NATIVE_KERNELS`` set to 1/true/yes)."""
    return environ.get(NATIVE_ENV, "").strip().lower() in ("1", "true", "yes")


def pinnable(machine: str | None = None) -> bool:
    """Whether this CPU is an x86 one, where the AVX2 path exists."""
    return (machine or platform.machine()).lower() in X86


def pin(environ: MutableMapping[str, str] = os.environ, machine: str | None = None) -> bool:
    """Set the variables of the AVX2 path in ``environ`` (overriding the user's); True if pinned."""
    if native_requested(environ) or not pinnable(machine):
        return False
    environ.update(PINNED)
    for name, value in PINNED_IF_UNSET.items():
        environ.setdefault(name, value)
    return True


def mode(environ: MutableMapping[str, str] = os.environ, machine: str | None = None) -> str:
    """``pinned`` (the AVX2 path), ``native`` (opted out) or ``unpinnable`` (not an x86 CPU)."""
    if not pinnable(machine):
        return "unpinnable"
    return "native" if native_requested(environ) else "pinned"


def settings(environ: MutableMapping[str, str] = os.environ) -> dict[str, Any]:
    """What ``run.json`` records: the mode and each variable as the kernels see it."""
    return {"mode": mode(environ), **{name: environ.get(name) for name in VARIABLES}}


def in_effect() -> dict[str, Any]:
    """The kernels this process actually runs (read from the libraries, for ``config.json``)."""
    state: dict[str, Any] = {"mode": mode()}
    try:
        import torch

        state["aten"] = torch.backends.cpu.get_cpu_capability()
    except ImportError:
        pass
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features

        state["numpy_avx512"] = any(features.get(name) for name in PINNED["NPY_DISABLE_CPU_FEATURES"].split())
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info

        state["openblas"] = sorted({str(i.get("architecture")) for i in threadpool_info()
                                    if i.get("internal_api") == "openblas"})
    except ImportError:
        pass
    return state


def consistent(state: dict[str, Any]) -> bool:
    """Whether a pinned process really runs the AVX2 path (numpy loaded before the pin would not)."""
    if state.get("mode") != "pinned":
        return True
    coretype = os.environ.get("OPENBLAS_CORETYPE", "").lower()
    return (state.get("aten") in (None, "AVX2", "DEFAULT")
            and not state.get("numpy_avx512", False)
            and all(arch.lower() == coretype for arch in state.get("openblas", [])))

