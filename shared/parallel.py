"""Process pools of one-thread workers: ``parallel_map``."""
from __future__ import annotations

import sys
from typing import Any, Callable, Iterable, Sequence

from shared.errors import ParameterError


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
