"""A tiny repository of runner outputs for the scorecard tests: two papers run, one not."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402

from shared.catalog import Paper  # noqa: E402

CATALOG = {p.id: p for p in [
    Paper("toy_pass", "A Toy Paper Whose Claims Hold", "Ada Lovelace, Alan Turing",
          "NeurIPS 2022", "2210.00001"),
    Paper("toy_fail", "A Toy Paper With One Failing Claim", "Grace Hopper", "ICLR 2025",
          "2406.00002"),
    Paper("toy_missing", "A Toy Paper Nobody Ran", "Claude Shannon", "arXiv preprint 2025",
          "2505.00003"),
]}
DEVIATIONS = "Trained for **5 epochs** instead of 200.\n\n- MNIST subset, not CIFAR-10\n- one seed"


def claim(name: str, measured, op: str, threshold, verdict: str, note: str = "") -> dict:
    return {"name": name, "statement": f"statement of {name}", "measured": measured, "op": op,
            "threshold": threshold, "verdict": verdict, "note": note}


CLAIMS = {
    "toy_pass": [claim("nc1_small", 0.00123456, "<=", 0.01, "PASS"),
                 claim("acc_high", 0.991, ">=", 0.95, "PASS"),
                 claim("width_sweep", None, ">=", 0.5, "N/A", "paper scale only"),
                 claim("early_exit", 12.5, "", None, "INFO")],
    "toy_fail": [claim("loss_drops", 0.25, "<", 0.5, "PASS"),
                 claim("acc_gap", 0.0421, "<", 0.015, "FAIL", "equal accuracy is fragile here")],
}
EXPECTED_NA = {"toy_pass": 1}  # toy_pass declares its one N/A claim (paper scale only) at cpu
RUN_SECONDS = {"toy_pass": 83.4, "toy_fail": 7.25}
STARTED = {"toy_pass": "2025-06-01T10:00:00+00:00", "toy_fail": "2025-06-02T09:30:00+00:00"}


def write_figure(path: Path, slope: float) -> None:
    fig, ax = plt.subplots(figsize=(5, 3), dpi=80)
    ax.plot([0, 1, 2], [0, slope, 2 * slope])
    fig.savefig(path)
    plt.close(fig)


def write_notebook(path: Path, paper_id: str, parameters: dict) -> None:
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(f"# {CATALOG[paper_id].title}"),
        nbformat.v4.new_code_cell("scale = 'cpu'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_markdown_cell(f"## Deviations from the paper\n{DEVIATIONS}"),
    ])
    notebook.metadata["papermill"] = {"parameters": parameters}
    nbformat.write(notebook, path)


def write_run(folder: Path, paper_id: str) -> None:
    """Every file the runner leaves in ``results/<id>/`` after a successful run."""
    claims = CLAIMS[paper_id]
    verdicts = [c["verdict"] for c in claims]
    passed, failed = verdicts.count("PASS"), verdicts.count("FAIL")
    total = passed + failed
    parameters = {"scale": "cpu", "seed": 3, "epochs": 5}
    (folder / "figures").mkdir(parents=True)
    for i, name in enumerate(["accuracy", "nc_metrics"]):
        write_figure(folder / "figures" / f"{name}.png", slope=i + 1)
    (folder / "tables").mkdir()
    (folder / "tables" / "curves.csv").write_text("epoch,loss\n1,0.5\n2,0.25\n")
    write_notebook(folder / "notebook.ipynb", paper_id, parameters)
    dump(folder / "metrics.json", {"train": {"acc": 1.0}, "test": {"acc": 0.98}})
    dump(folder / "claims.json", {"paper": paper_id, "scale": "cpu", "passed": passed,
                                  "total": total, "failed": failed, "na": verdicts.count("N/A"),
                                  "info": verdicts.count("INFO"), "expected_na": EXPECTED_NA.get(paper_id, 0),
                                  "claims": claims})
    dump(folder / "run.json", {
        "paper": paper_id, "scale": "cpu", "seed": 3, "parameters": parameters,
        "config": {"epochs": 5, "lr": 0.1, "seed": 3}, "git_commit": "0123456789abcdef" * 2 + "01234567",
        "git_dirty": paper_id == "toy_fail", "started": STARTED[paper_id],
        "wall_time_s": RUN_SECONDS[paper_id],
        "versions": {"python": "3.11.2", "torch": "2.13.0", "numpy": "2.3.0"},
        "hardware": {"platform": "Linux-x86_64", "processor": "x86_64", "cpu_count": 2, "gpu": None},
        "kernels": {"mode": "native" if paper_id == "toy_fail" else "pinned", "MKL_CBWR": "AVX2"},
    })


def dump(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def make_repo(root: Path) -> Path:
    """params.yaml listing three papers, their notebooks, README.md, and results for two."""
    (root / "notebooks").mkdir(parents=True)
    (root / "params.yaml").write_text(
        "scale: cpu\nseed: 0\npapers:\n"
        + "".join(f"  {pid}:\n    epochs: null\n" for pid in CATALOG)
    )
    for pid in CATALOG:
        write_notebook(root / "notebooks" / f"{pid}.ipynb", pid, {})
    for pid in CLAIMS:
        write_run(root / "results" / pid, pid)
    (root / "README.md").write_text(
        "# suite\n\n## Results\n<!-- results:start -->\nold table\n<!-- results:end -->\n\nMore text.\n"
    )
    return root
