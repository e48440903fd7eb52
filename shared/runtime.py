"""Seeding, determinism, thread counts and device choice."""
from __future__ import annotations

import os
import random

import numpy as np

from shared.errors import ParameterError

DEVICES = ("auto", "cpu", "cuda", "mps")
# OpenMP threads sleep when idle instead of spinning. Measured (`make bench`, threads section): with
# one core busy, two spinning threads made smoke runs 7-10x slower; quiet, passive ones cost 4-8% on LLM
# papers and up to 57% on small models (those can set `threads: 1` in their preset). The runner, `make`
# and the tests set it for the kernels unless the environment already does.
OMP_WAIT_POLICY = "PASSIVE"


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed python, numpy and torch; make torch deterministic where it matters."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def set_threads(n: int | None = None) -> int:
    """Use ``n`` threads in torch and in numpy's BLAS (default: $PAPERSUITE_THREADS, else all cores)."""
    import torch
    from threadpoolctl import threadpool_limits

    from shared.config import threads_from_env  # 1-256 or unset; anything else is refused, naming the variable

    n = n or threads_from_env() or os.cpu_count() or 1
    torch.set_num_threads(n)
    threadpool_limits(limits=n, user_api="blas")  # numpy/scipy would otherwise spin one thread per core
    return n


def choose_device(preference: str = "auto"):
    """Return a torch.device: ``auto`` picks cuda, then mps, then cpu."""
    import torch

    if preference not in DEVICES:
        raise ParameterError("device", f"unknown value {preference!r}", DEVICES)
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device", "'cuda' was asked for but torch sees no CUDA GPU", DEVICES)
    if preference == "mps" and not torch.backends.mps.is_available():
        raise ParameterError("device", "'mps' was asked for but is not available", DEVICES)
    return torch.device(preference)
