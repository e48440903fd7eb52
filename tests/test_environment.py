"""The pip path (requirements.txt) and the conda path (environment.yml) agree."""
import re

import yaml

from shared.paths import REPO_ROOT


def requirement_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}


def test_environment_yml_lists_the_same_pinned_packages_as_requirements():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip_section) == requirement_lines((REPO_ROOT / "requirements.txt").read_text())
    assert "python=3.11" in env["dependencies"]


def test_every_requirement_is_pinned_and_torch_takes_the_local_cpu_wheel():
    for path in ("requirements.txt", "requirements-nodeps.txt"):
        for line in requirement_lines((REPO_ROOT / path).read_text()):
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][0-9A-Za-z.]*", line), line
    assert "torch==2.13.0" in requirement_lines((REPO_ROOT / "requirements.txt").read_text())
