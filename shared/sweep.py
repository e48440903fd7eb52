"""Run one paper for several seeds and say how robust each claim is:
``python -m shared.sweep <id> --seeds 0-4 [--scale S] [--executor slurm|local]``.

Each seed runs as one task of a job array (SLURM) or one local process, through the runner, into
``results/sweeps/<id>/seed=<n>/``. Then ``results/sweeps/<id>/seeds.json`` records, for each claim,
its pass rate over the seeds where it applied, the mean, min and max of its value, and the seeds
that failed; the scorecard shows it as "holds for k/n seeds". ``--collect`` summarizes seed folders
that are already there. A check that failed some seed is printed as the preset lines of the seed rule
(``shown_not_asserted:``), which make the claim INFO at that scale.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any, Sequence

from shared import paths
from shared.claims import fmt, held
from shared.cluster import LOGS, add_job_options, check_job_options, log, make_executor, run_paper, submit_and_wait
from shared.config import MAX_SEED
from shared.errors import ParameterError
from shared.results import write_json


MAX_SEEDS = 1000   # runs in one sweep: a typo like 0-100000000 must not submit (or enumerate) a hundred million


def parse_seeds(text: str) -> list[int]:
    """``0-4`` or ``0,2,7`` or ``0-2,9`` to a sorted list of at most MAX_SEEDS distinct seeds from 0 to MAX_SEED."""
    ranges = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            ranges.append((int(low), int(high or low)))
    except ValueError:
        raise ParameterError("seeds", f"{text!r} is not a list of seeds", "e.g. 0-4, 0,2,7 or 0-2,9") from None
    if not ranges or any(low > high for low, high in ranges) or min(low for low, _ in ranges) < 0:
        raise ParameterError("seeds", f"{text!r} gives no seed >= 0", "e.g. 0-4")
    count = sum(high - low + 1 for low, high in ranges)  # counted before any list is built
    if count > MAX_SEEDS or max(high for _, high in ranges) > MAX_SEED:
        raise ParameterError("seeds", f"{text!r} asks for {count} seeds up to {max(h for _, h in ranges)}",
                             f"at most {MAX_SEEDS} seeds, each from 0 to {MAX_SEED}")
    return sorted({seed for low, high in ranges for seed in range(low, high + 1)})


def sweep_dir(paper_id: str) -> Path:
    return paths.RESULTS_DIR / "sweeps" / paper_id


def summarize(paper_id: str, runs: dict[int, dict[str, Any] | None]) -> dict[str, Any]:
    """Per claim: pass rate over the seeds where it applied, value statistics, failed seeds."""
    names: list[str] = []
    for claims in runs.values():
        for claim in (claims or {}).get("claims", []):
            if claim["name"] not in names:
                names.append(claim["name"])
    table = {}
    for name in names:
        verdicts, outcomes, values, test = {}, {}, [], {}
        for seed, claims in runs.items():
            claim = next((c for c in (claims or {}).get("claims", []) if c["name"] == name), None)
            verdicts[seed] = claim["verdict"] if claim else "MISSING"
            outcomes[seed] = verdicts[seed]
            met = held(claim) if claim and claim["verdict"] == "INFO" else None
            if met is not None:  # a check shown by the seed rule
                outcomes[seed] = "PASS" if met else "FAIL"
            if claim and claim.get("measured") is not None and math.isfinite(claim["measured"]):
                values.append(claim["measured"])
            if claim and claim.get("op"):
                test = {"op": claim["op"], "threshold": claim["threshold"]}
        applied = [s for s, v in outcomes.items() if v in ("PASS", "FAIL", "MISSING")]
        passed = [s for s in applied if outcomes[s] == "PASS"]
        kinds = {v for v in verdicts.values() if v != "MISSING"}
        shown = "INFO" in kinds and any(outcomes[s] != verdicts[s] for s in runs)
        table[name] = {
            "kind": "shown" if shown else ("info" if kinds == {"INFO"} else ("n/a" if kinds == {"N/A"} else "check")),
            "passed": len(passed), "applied": len(applied),
            "pass_rate": len(passed) / len(applied) if applied else None,
            "failed_seeds": [s for s in applied if outcomes[s] != "PASS"],
            "mean": statistics.fmean(values) if values else None,
            "min": min(values) if values else None, "max": max(values) if values else None,
            "op": test.get("op"), "threshold": test.get("threshold"),
            "worst": worst_value(values, test.get("op")),
            "verdicts": {str(s): v for s, v in verdicts.items()},
        }
    return {"paper": paper_id, "seeds": sorted(runs), "failed_runs": sorted(s for s, c in runs.items() if c is None),
            "claims": table}


def worst_value(values: Sequence[float], op: str | None) -> float | None:
    """The value closest to failing: the least for > and >=, the largest for < and <=."""
    if not values or op not in (">", ">=", "<", "<="):
        return None
    return min(values) if op.startswith(">") else max(values)


def markdown(summary: dict[str, Any]) -> str:
    """The per-claim table of a sweep: kind, pass rate, worst value against the threshold, failed seeds."""
    lines = [f"`{summary['paper']}`, seeds {_seed_list(summary['seeds'])}:", "",
             "| claim | kind | holds for | worst | threshold | failed seeds |", "|---|---|---|---|---|---|"]
    for name, row in summary["claims"].items():
        if row["kind"] not in ("check", "shown"):
            continue
        worst = "–" if row.get("worst") is None else fmt(row["worst"])
        threshold = f"{row['op']} {fmt(row['threshold'])}" if row.get("op") else ""
        failed = ", ".join(map(str, row["failed_seeds"])) or "–"
        lines.append(f"| `{name}` | {row['kind']} | {row['passed']}/{row['applied']} | {worst} | {threshold} | {failed} |")
    return "\n".join(lines)


def read_runs(paper_id: str, seeds: Sequence[int]) -> dict[int, dict[str, Any] | None]:
    runs = {}
    for seed in seeds:
        file = sweep_dir(paper_id) / f"seed={seed}" / "claims.json"
        runs[seed] = json.loads(file.read_text()) if file.exists() else None
    return runs


def sweep(paper_id: str, seeds: Sequence[int], scale: str | None, executor_kind: str, partition: str | None,
          gpus: int, time_min: int, cpus: int = 2) -> Path:
    """Run every seed, wait, write seeds.json; return its path."""
    from shared.run import build_parameters, check_output

    check_job_options(gpus, time_min, cpus)
    outputs = {seed: sweep_dir(paper_id) / f"seed={seed}" for seed in seeds}
    log(f"{paper_id}: {len(seeds)} seed(s) ({_seed_list(seeds)}), checking them before anything is submitted")
    build_parameters(paper_id, scale, [f"seed={max(seeds)}"])  # the runner's checks: only the seed differs
    for out in outputs.values():
        check_output(paper_id, out)
    args = [[*(["--scale", scale] if scale else []), "--set", f"seed={seed}", "--output", str(out)]
            for seed, out in outputs.items()]
    executor = make_executor(executor_kind, paths.REPO_ROOT / LOGS / "%j", partition, gpus, time_min, cpus,
                             name=f"sweep-{paper_id}")

    def submit() -> dict[str, Any]:
        jobs = executor.map_array(run_paper, [paper_id] * len(args), args)  # one job array
        return {f"{paper_id} seed={seed}": job for seed, job in zip(outputs, jobs)}

    submit_and_wait(submit, executor_kind)
    return collect(paper_id, seeds, scale or "cpu")


def seed_rule_advice(paper_id: str, summary: dict[str, Any], scale: str) -> list[str]:
    """The preset lines the seed rule asks for: a check that held for some seeds only is shown, not asserted;
    one that held for none does not reproduce and stays a check."""
    lines, failing = [], []
    for name, row in summary["claims"].items():
        if row["kind"] not in ("check", "shown") or not row["applied"] or row["passed"] == row["applied"]:
            continue
        if row["passed"] == 0:  # not a flaky claim: it does not reproduce, and stays a check that FAILs
            failing.append(f"{name} held for no seed: keep it checked (FAIL) and say so in the notebook's Deviations")
        else:
            lines.append(f'    {name}: "holds for {row["passed"]}/{row["applied"]} seeds '
                         f'({_seed_list(summary["seeds"])}); failed {row["failed_seeds"]}"')
    advice = ([f"the seed rule: in shared/presets/{paper_id}.yaml put", "shown_not_asserted:", f"  {scale}:", *lines]
              if lines else [])
    return advice + failing


def _seed_list(seeds: Sequence[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]}" if list(seeds) == list(range(seeds[0], seeds[-1] + 1)) else ",".join(map(str, seeds))


def collect(paper_id: str, seeds: Sequence[int], scale: str = "cpu") -> Path:
    """Summarize the seed folders already in ``results/sweeps/<id>/`` into seeds.json; return its path."""
    summary = summarize(paper_id, read_runs(paper_id, seeds))
    target = write_json(sweep_dir(paper_id) / "seeds.json", summary)
    for name, row in summary["claims"].items():
        if row["kind"] in ("check", "shown"):
            log(f"{paper_id}/{name}: holds for {row['passed']}/{row['applied']} seeds"
                + (" (shown, not asserted)" if row["kind"] == "shown" else "")
                + (f" (failed: {row['failed_seeds']})" if row["failed_seeds"] else ""))
    for line in seed_rule_advice(paper_id, summary, scale):
        log(line)
    print(markdown(summary))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("paper", help="paper id")
    parser.add_argument("--seeds", default="0-4", help="e.g. 0-4 (default), 0,2,7")
    parser.add_argument("--collect", action="store_true",
                        help="run nothing: summarize the seed folders already in results/sweeps/<id>/")
    add_job_options(parser)
    args = parser.parse_args(argv)
    try:
        if args.collect:
            target = collect(args.paper, parse_seeds(args.seeds), args.scale or "cpu")
        else:
            target = sweep(args.paper, parse_seeds(args.seeds), args.scale, args.executor, args.partition,
                           args.gpus, args.time, args.cpus)
    except (ParameterError, FileNotFoundError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")
    except KeyboardInterrupt:
        log("interrupted: the submitted jobs were cancelled")
        return 130
    log(f"wrote {target.relative_to(paths.REPO_ROOT) if paths.REPO_ROOT in target.parents else target}")
    summary = json.loads(target.read_text())
    return 1 if summary["failed_runs"] else 0


if __name__ == "__main__":
    sys.exit(main())
