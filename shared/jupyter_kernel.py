"""The project's Jupyter kernel: ``shared`` first, then IPython's kernel.

Importing ``shared`` pins the numeric kernel path (``shared.kernels``) before the kernel or a
notebook loads numpy, whose OpenBLAS and SIMD loops pick their kernels when they load; a notebook's
setup cell alone would come too late for them. ``PAPERSUITE_NATIVE_KERNELS=1`` in the environment
Jupyter starts from opts out, as everywhere.

``python -m shared.jupyter_kernel install`` (run by ``make setup``) points the environment's kernel
specs ``python3`` (the kernel every notebook names, which papermill and nbval start too) and
``papersuite`` (the one ``make lab`` shows) at this module; Jupyter then starts
``python -m shared.jupyter_kernel -f <connection file>``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import shared  # noqa: F401  pins the kernel path

SPECS = {"python3": "Python 3 (ipykernel)", "papersuite": "Python 3 (papersuite)"}


def install(prefix: str | None = None) -> list[Path]:
    """Write the kernel specs under ``<prefix>/share/jupyter/kernels`` (default: this environment)."""
    written = []
    for name, display in SPECS.items():
        folder = Path(prefix or sys.prefix) / "share" / "jupyter" / "kernels" / name
        folder.mkdir(parents=True, exist_ok=True)
        spec = {"argv": [sys.executable, "-m", "shared.jupyter_kernel", "-f", "{connection_file}"],
                "display_name": display, "language": "python", "metadata": {"debugger": True}}
        (folder / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
        written.append(folder / "kernel.json")
    return written


def main(argv: list[str]) -> None:
    if argv[:1] == ["install"]:
        for path in install(argv[1] if len(argv) > 1 else None):
            print(f"kernel spec {path}")
        return
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
