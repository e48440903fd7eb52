"""The interactive path: a notebook run inside JupyterLab in a real browser, an edited parameter
run with the Jupyter kernel, and notebooks stored the way the pre-commit hook leaves them."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from shared.paths import OUTPUT_ENV, REPO_ROOT, notebook_path
from shared.run import load_params

PAPERS = list(load_params()["papers"])
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
BIN = Path(sys.executable).parent
PAPER = "residual_convergence"  # the quickest notebook at smoke


def with_parameter(nb: nbformat.NotebookNode, name: str, value: str) -> nbformat.NotebookNode:
    """Set ``name`` in the ``parameters`` cell as a user would, by editing its line."""
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    lines = cell.source.splitlines()
    index = next(i for i, line in enumerate(lines) if line.split(":")[0].strip() == name)
    annotation = lines[index].split("=")[0]
    lines[index] = f"{annotation}= {value}  # edited"
    cell.source = "\n".join(lines)
    return nb


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """JupyterLab, headless, on a free local port with a token, serving a smoke copy of one notebook."""
    root = tmp_path / "lab"
    root.mkdir()
    nb = with_parameter(nbformat.read(notebook_path(PAPER), as_version=4), "scale", '"smoke"')
    nbformat.write(nb, root / f"{PAPER}.ipynb")
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, OUTPUT_ENV: str(tmp_path / "results"), "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "IPYTHONDIR": str(tmp_path / "ipython")}
    server = subprocess.Popen(
        [str(BIN / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", "--allow-root", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=", "--LabApp.extension_manager=readonly", "--ServerApp.open_browser=False"],
        env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "server.log").open("w"))
    deadline = time.time() + 60
    while time.time() < deadline and server.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.3)
    assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
    yield f"http://127.0.0.1:{port}/lab/tree/{PAPER}.ipynb?token={token}", tmp_path
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                    reason="Debian's chromium and chromium-driver are not installed (make test installs them as root)")
def test_a_notebook_runs_all_cells_inside_jupyterlab(lab):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    url, tmp_path = lab
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,2000", f"--user-data-dir={tmp_path / 'chrome'}"):
        options.add_argument(flag)
    started = time.time()
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 120, poll_frequency=0.5)
        wait.until(lambda d: d.execute_script(
            "const app = window.jupyterapp; const w = app && app.shell.currentWidget;"
            "return !!(w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
            " && w.sessionContext.session.kernel.connectionStatus === 'connected');"))
        driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        verdict = "return [...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.innerText).join('\\n')"
        WebDriverWait(driver, 240, poll_frequency=1).until(lambda d: f"{PAPER} @ smoke: " in d.execute_script(verdict))
        text = driver.execute_script(verdict)
        driver.execute_script(  # the Verdict table and the figures above it, in the screenshot
            "const outs = [...document.querySelectorAll('.jp-OutputArea-output')];"
            f"const v = outs.find(e => e.innerText.includes('{PAPER} @ smoke: ')); if (v) v.scrollIntoView({{block: 'end'}});")
        time.sleep(1)
        driver.save_screenshot(str(tmp_path / "jupyterlab.png"))
        images = driver.execute_script(
            "return [...document.querySelectorAll('.jp-OutputArea-output img')].map(i => i.naturalWidth)")
    finally:
        driver.quit()
    end = text.index(f"{PAPER} @ smoke: ")
    table = text[text.rindex("claim ", 0, end):end]
    assert "PASS" in table and "FAIL" not in table, table
    assert images and max(images) > 100, "no figure rendered inline"
    assert (tmp_path / "jupyterlab.png").stat().st_size > 10_000
    print(f"JupyterLab run: {time.time() - started:.0f} s; screenshot {tmp_path / 'jupyterlab.png'}")


@pytest.mark.slow
def test_an_edited_parameter_reaches_config_json_and_the_run_is_complete(scratch_repo, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.delenv(OUTPUT_ENV, raising=False)  # as in Jupyter: the notebook stages and publishes itself
    monkeypatch.setenv("PYTHONPATH", str(scratch_repo))
    path = scratch_repo / "notebooks" / f"{PAPER}.ipynb"
    nb = with_parameter(with_parameter(nbformat.read(path, as_version=4), "scale", '"smoke"'), "steps", "120")
    NotebookClient(nb, kernel_name="python3", timeout=600,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    results = scratch_repo / "results" / PAPER
    config = json.loads((results / "config.json").read_text())
    assert config["steps"] == 120 and config["scale"] == "smoke"
    claims = json.loads((results / "claims.json").read_text())
    assert claims["paper"] == PAPER and claims["claims"]
    assert (results / "metrics.json").exists() and any((results / "figures").glob("*.png"))
    assert not [p for p in (scratch_repo / "results" / ".staging").iterdir() if p.name.endswith("-publish")]


@pytest.mark.parametrize("paper_id", PAPERS)
def test_notebooks_are_stored_as_the_hook_leaves_them(paper_id):
    from nbstripout import strip_output

    stored = nbformat.read(notebook_path(paper_id), as_version=4)
    stripped = strip_output(nbformat.read(notebook_path(paper_id), as_version=4),
                            keep_output=False, keep_count=False, keep_id=True)
    assert stored == stripped, f"run `nbstripout --keep-id notebooks/{paper_id}.ipynb` (or `make hooks`)"
    code = [c for c in stored.cells if c.cell_type == "code"]
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    assert sum(c.source.startswith("# NBVAL_CHECK_OUTPUT") for c in code) == 1


def test_the_pre_commit_hook_strips_a_notebook_and_keeps_tags_and_markers(tmp_path):
    shutil.copy(REPO_ROOT / ".pre-commit-config.yaml", tmp_path)
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.read(notebook_path(PAPER), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.execution_count = 3
            cell.outputs = [nbformat.v4.new_output("stream", text="noise\n")]
    target = tmp_path / "notebooks" / "x.ipynb"
    nbformat.write(nb, target)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)  # pre-commit sees changes to staged files
    done = subprocess.run([str(BIN / "pre-commit"), "run", "nbstripout", "--files", "notebooks/x.ipynb"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "files were modified" in done.stdout, done.stdout + done.stderr
    clean = nbformat.read(target, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in clean.cells if c.cell_type == "code")
    assert clean == nbformat.read(notebook_path(PAPER), as_version=4)
