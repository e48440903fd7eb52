"""Run stale paper stages as cluster jobs: ``python -m shared.cluster repro [ids...] [options]``.

DVC stays the ledger, submitit the engine: the stale paper stages (``dvc status``) are validated
with the runner's own checks, submitted as one job each (SLURM through ``sbatch``, or local
processes with ``--executor local``), watched until they end, then recorded in ``dvc.lock``
(``dvc commit``) and summarised by the report stage. A job runs ``python -m shared.run <id>``
exactly as the DVC stage does, in the same ``.venv`` on a shared file system. Ctrl-C cancels the
submitted jobs.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from shared import paths
from shared.config import SCALES
from shared.errors import ParameterError

EXECUTORS = ("slurm", "local")
LOGS = "results/.cluster"
ERROR_LINE = re.compile(r"^(\[papersuite\] )?[\w.]*(Error|Exception|Interrupt)\b.*:")


def log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


def run_paper(paper_id: str, args: Sequence[str]) -> int:
    """The job's body: the runner, as a DVC stage runs it. A failed run fails the job."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("CI", "1")  # no progress bars in job logs
    from shared import run

    code = run.main([paper_id, *args])
    if code:
        raise RuntimeError(f"{paper_id}: the runner exited with {code}; the executed notebook is in "
                           f"results/failed/{paper_id}.ipynb")
    return code


def make_executor(kind: str, folder: Path, partition: str | None = None, gpus: int = 0,
                  time_min: int = 180, cpus: int = 2, name: str = "papersuite"):
    """A submitit executor: SLURM (sbatch) or local processes, with the same resources."""
    import submitit

    if kind not in EXECUTORS:
        raise ParameterError("executor", f"unknown value {kind!r}", EXECUTORS)
    check_job_options(gpus, time_min, cpus)
    executor = submitit.AutoExecutor(folder=folder, cluster=kind)
    options: dict[str, Any] = {"timeout_min": time_min, "cpus_per_task": cpus, "name": name}
    if gpus:
        options["gpus_per_node"] = gpus
    if kind == "slurm" and partition:
        options["slurm_partition"] = partition
    executor.update_parameters(**options)
    return executor


JOB_LIMITS = {"gpus": (0, 64), "time": (1, 60 * 24 * 30), "cpus": (1, 1024)}  # per job; time in minutes


def check_job_options(gpus: int, time_min: int, cpus: int) -> None:
    """Refuse a job option SLURM would reject or misread (``--time -5`` ended as a job with an empty log)."""
    for name, value in (("gpus", gpus), ("time", time_min), ("cpus", cpus)):
        low, high = JOB_LIMITS[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ParameterError(f"--{name}", f"{value!r} is out of range", f"{low}-{high}")


def stale_stages(ids: Sequence[str] = ()) -> list[str]:
    """Paper stages that ``dvc status`` reports as changed (only ``ids`` if given), in params.yaml's order."""
    from shared.run import load_params

    papers = list(load_params()["papers"])
    unknown = [i for i in ids if i not in papers]
    if unknown:
        raise ParameterError("paper", f"unknown paper {unknown[0]!r}", papers)
    done = subprocess.run([sys.executable, "-m", "dvc", "status", "--json", *(ids or papers)], cwd=paths.REPO_ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dvc status failed: {done.stderr.strip()}")
    changed = {name.split(":")[-1] for name in json.loads(done.stdout or "{}")}
    return [p for p in papers if p in changed and (not ids or p in ids)]


def first_error(log_text: str) -> str:
    """The first line of a job's log that names an error, else its last non-empty line."""
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    return next((line for line in lines if ERROR_LINE.match(line)), lines[-1] if lines else "(empty log)")


def in_queue(job) -> bool:
    """Whether SLURM still lists the job (sacct may be off: accounting is not needed)."""
    done = subprocess.run(["squeue", "-h", "-j", str(job.job_id)], capture_output=True, text=True)
    return done.returncode == 0 and bool(done.stdout.strip())


@dataclass
class Outcome:
    name: str
    job_id: str
    ok: bool
    log: Path
    error: str = ""


def wait(jobs: dict[str, Any], kind: str, poll: float = 2.0, grace: float = 15.0) -> list[Outcome]:
    """Wait for every job, printing each as it ends; return the outcomes in submission order."""
    from tqdm.auto import tqdm

    from shared.progress import quiet

    outcomes: dict[str, Outcome] = {}
    gone_since: dict[str, float] = {}
    bar = tqdm(total=len(jobs), desc="jobs", disable=quiet())
    while len(outcomes) < len(jobs):
        for name, job in jobs.items():
            if name in outcomes:
                continue
            # SLURM: a job is over when its result file exists, or once it has left the queue
            # (cancelled, out of time, node failure); `sacct` is not needed, so no accounting database
            has_result = job.paths.result_pickle.exists()
            finished = has_result if kind == "slurm" else job.done()
            if not finished and kind == "slurm" and not in_queue(job):
                gone_since.setdefault(name, time.time())
                finished = time.time() - gone_since[name] > grace
            if not finished:
                continue
            error = ""
            if kind == "slurm" and not has_result:
                failure: BaseException | None = RuntimeError("the job left the queue without a result "
                                                             "(cancelled, out of time, or its node failed)")
            else:
                failure = job.exception()
            if failure is not None:
                log_text = job.paths.stderr.read_text() if job.paths.stderr.exists() else str(failure)
                error = first_error(log_text)
            outcomes[name] = Outcome(name, str(job.job_id), failure is None, job.paths.stderr, error)
            bar.update(1)
            state = "done" if failure is None else f"FAILED: {error}"
            log(f"{name} (job {job.job_id}): {state}" + ("" if failure is None else f"\n  log: {job.paths.stderr}"))
        time.sleep(0 if len(outcomes) == len(jobs) else poll)
    bar.close()
    return [outcomes[name] for name in jobs]


def cancel(jobs: dict[str, Any]) -> None:
    for name, job in jobs.items():
        try:
            if not job.paths.result_pickle.exists():
                job.cancel(check=False)
                log(f"cancelled {name} (job {job.job_id})")
        except Exception:  # a job that ended meanwhile
            pass


def submit_and_wait(submit: Callable[[], dict[str, Any]], kind: str) -> list[Outcome]:
    """Submit, then wait; Ctrl-C or SIGTERM cancels every job still queued or running."""
    import signal

    jobs: dict[str, Any] = {}
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        jobs.update(submit())
        for name, job in jobs.items():
            log(f"submitted {name}: job {job.job_id}")
        return wait(jobs, kind)
    except KeyboardInterrupt:
        cancel(jobs)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def dvc(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=paths.REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed: {done.stderr.strip()}")


def repro(ids: Sequence[str], scale: str | None, executor_kind: str, partition: str | None,
          gpus: int, time_min: int, cpus: int = 2) -> int:
    """Submit every stale paper stage, wait, record the good ones in dvc.lock, run the report."""
    from shared.run import build_parameters, load_params

    check_job_options(gpus, time_min, cpus)
    stages = stale_stages(ids)
    if not stages:
        log("every paper stage is up to date (dvc status)")
        return 0
    args = ["--scale", scale] if scale else []
    for paper_id in stages:  # the runner's checks, before anything is submitted
        build_parameters(paper_id, scale, [])
    matches_lock = scale in (None, load_params().get("scale"))
    folder = paths.REPO_ROOT / LOGS / "%j"
    executor = make_executor(executor_kind, folder, partition, gpus, time_min, cpus)

    def submit() -> dict[str, Any]:
        with executor.batch():
            jobs = [executor.submit(run_paper, paper_id, args) for paper_id in stages]
        return dict(zip(stages, jobs))

    outcomes = submit_and_wait(submit, executor_kind)
    good = [o.name for o in outcomes if o.ok]
    for o in outcomes:
        if not o.ok:
            log(f"{o.name}: job {o.job_id} failed: {o.error}\n  log: {o.log}\n"
                f"  executed notebook: results/failed/{o.name}.ipynb (if the notebook started)")
    if good and matches_lock:
        dvc("commit", "-f", *good)
        log(f"recorded {', '.join(good)} in dvc.lock")
        if len(good) == len(outcomes):
            dvc("repro", "--single-item", "report")
        else:  # the report stage needs every paper's results: refresh the page without recording it
            subprocess.run([sys.executable, "-m", "shared.report"], cwd=paths.REPO_ROOT, check=False)
        log("refreshed the scorecard (results/index.html)")
    elif good:
        log(f"--scale {scale} differs from params.yaml's scale: results are in results/<id>/, "
            "but dvc.lock is left as it was")
    return 0 if len(good) == len(outcomes) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.cluster", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("repro", help="run the stale paper stages as cluster jobs")
    cmd.add_argument("ids", nargs="*", help="paper ids (default: every stale paper stage)")
    add_job_options(cmd)
    args = parser.parse_args(argv)
    try:
        return repro(args.ids, args.scale, args.executor, args.partition, args.gpus, args.time, args.cpus)
    except (ParameterError, FileNotFoundError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")
    except KeyboardInterrupt:
        log("interrupted: the submitted jobs were cancelled")
        return 130


def add_job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", choices=SCALES, help="default: params.yaml's scale")
    parser.add_argument("--executor", choices=EXECUTORS, default="slurm")
    parser.add_argument("--partition", help="SLURM partition (default: the cluster's default)")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs per job (the paper scale wants 1)")
    parser.add_argument("--time", type=int, default=180, help="time limit per job, minutes")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs per job")


if __name__ == "__main__":
    sys.exit(main())
