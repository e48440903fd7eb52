"""Seeding, determinism, thread counts and device choice."""
from __future__ import annotations

import os
import random
import sys
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from shared.errors import ParameterError

DEVICES = ("auto", "cpu", "cuda", "mps")


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

    n = n or int(os.environ.get("PAPERSUITE_THREADS", 0)) or os.cpu_count() or 1
    torch.set_num_threads(n)
    threadpool_limits(limits=n, user_api="blas")  # numpy/scipy would otherwise spin one thread per core
    return n


def _one_thread_call(fn: Callable, args: Sequence) -> Any:
    """``fn(*args)`` in a worker process, after limiting BLAS, OpenMP and (if imported) torch to one thread."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    return fn(*args)


def parallel_map(fn: Callable, jobs: Iterable[Sequence], n_jobs: int = 1, desc: str | None = None) -> list:
    """``[fn(*job) for job in jobs]``; with ``n_jobs`` > 1 in that many processes of one thread each.

    On these CPUs small models gain more from two one-thread processes than from two threads; the values
    equal a one-thread loop's. ``fn`` must be importable (a module-level function or a partial of one);
    ``desc`` shows a progress bar.
    """
    from shared.progress import progress

    jobs = [tuple(job) for job in jobs]
    if n_jobs < 1:
        raise ParameterError("n_jobs", f"must be at least 1, got {n_jobs}")
    if n_jobs == 1:
        return [fn(*job) for job in (progress(jobs, desc=desc) if desc else jobs)]
    from joblib import Parallel, delayed

    outs = Parallel(n_jobs=min(n_jobs, len(jobs)) or 1, return_as="generator")(
        delayed(_one_thread_call)(fn, job) for job in jobs)
    return list(progress(outs, total=len(jobs), desc=f"{desc} ({n_jobs} processes)") if desc else outs)


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
