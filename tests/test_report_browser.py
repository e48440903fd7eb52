"""The scorecard in headless Chromium: every figure loads, the claim tables are there."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import pytest

from report_fixtures import CATALOG, make_repo
from shared import report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install -y chromium)")

# Run after every image has loaded or failed: records each image's decoded width in the DOM.
PROBE = """<script>
addEventListener("load", () => {
  for (const img of document.images) img.dataset.naturalWidth = img.naturalWidth;
  document.body.dataset.probed = "done";
});
</script>
"""


def chromium(user_data: Path, *args: str) -> str:
    """Run headless Chromium offline with a throwaway profile; return its stdout."""
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={user_data}", "--hide-scrollbars", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    repo = make_repo(tmp_path_factory.mktemp("repo"))
    assert report.main(["--root", str(repo)], catalog=CATALOG) == 0
    return repo / "results" / "index.html"


def test_every_figure_loads_and_claim_tables_render(page, tmp_path):
    probe = page.with_name("probe.html")  # beside the page, so relative figure paths still hold
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = chromium(tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())

    assert 'data-probed="done"' in dom
    images = re.findall(r"<img\b[^>]*>", dom)
    assert len(images) == 4
    broken = [img for img in images if not re.search(r'data-natural-width="[1-9]\d*"', img)]
    assert not broken, f"images that did not load: {broken}"
    assert dom.count('<table class="claims">') == 2
    assert '<span class="badge verdict FAIL">FAIL</span>' in dom


def test_screenshot_is_not_blank(page, tmp_path):
    shot = tmp_path / "scorecard.png"
    chromium(tmp_path / "profile", "--window-size=1280,2400", f"--screenshot={shot}", page.as_uri())
    pixels = matplotlib.image.imread(shot)
    print(f"screenshot: {shot}")
    assert pixels.shape[:2] == (2400, 1280)
    assert pixels[..., :3].reshape(-1, 3).std(axis=0).min() > 0.02, "the screenshot is one colour"
