"""The environment is locked: requirements.lock holds every package with its hashes, and the pip path
(make setup), the conda path (environment.yml) and the direct pins (requirements.txt) agree."""
import re

import yaml

from shared.paths import REPO_ROOT

LOCKS = {"requirements.txt": "requirements.lock", "requirements-nodeps.txt": "requirements-nodeps.lock"}


def requirement_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}


def locked(path: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a lock file written by `make lock`."""
    entries: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", (REPO_ROOT / path).read_text()):
        head = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", block)
        if head:
            entries[head[1].lower().replace("_", "-")] = (head[2], re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return entries


def test_environment_yml_installs_the_lock():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip_section == ["-r requirements.lock"]
    assert "python=3.11" in env["dependencies"]


def test_every_direct_requirement_is_pinned_and_locked_at_that_version_with_hashes():
    for direct, lock in LOCKS.items():
        entries = locked(lock)
        assert entries and all(hashes for _, hashes in entries.values()), f"{lock}: an entry without --hash"
        for line in requirement_lines((REPO_ROOT / direct).read_text()):
            name, version = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([0-9][0-9A-Za-z.]*)", line).groups()
            assert entries[name.lower().replace("_", "-")][0].split("+")[0] == version, f"{lock}: {line}"
    assert locked("requirements.lock")["torch"][0] == "2.13.0+cpu"   # the CPU build, never PyPI's CUDA one
    assert len(locked("requirements.lock")) > 100                    # the transitive set, not the direct pins


def test_make_setup_installs_exactly_the_lock():
    makefile = (REPO_ROOT / "Makefile").read_text()
    for lock in LOCKS.values():
        assert re.search(rf"pip install .*--require-hashes .*-r {re.escape(lock)}", makefile), lock
    assert "-r requirements.txt" not in makefile.split("\nlock:")[0]
