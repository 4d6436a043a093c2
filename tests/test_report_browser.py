"""report.html opened in a real headless Chromium: the browser runs it, decodes every figure,
and the screenshot shows the page.

Needs Debian's ``chromium`` (``scripts/ensure-chromium.sh`` installs it). Without it the
test is skipped on a developer machine and FAILS in CI (``CI`` set), where it must run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from clusterneg.report import write_report
from report_fixtures import BASE_HIT, EVIL_TITLE, synthetic

pytestmark = pytest.mark.browser

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--hide-scrollbars", "--mute-audio",
)


def _chromium() -> str:
    """Path of the Chromium binary, or skip (developer) / fail (CI) with the reason."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    if found:
        return found
    reason = "Chromium not found (Debian package 'chromium'; run scripts/ensure-chromium.sh)"
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{reason}; CI must run the browser test")
    pytest.skip(reason)


def _run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [_chromium(), *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish in 90 s: {' '.join(cmd)}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


class _Dom(HTMLParser):
    """Collects what the test inspects from the DOM Chromium serialised after load."""

    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str | None] = {}
        self.stack: list[str] = []
        self.ids: set[str] = set()
        self.row_samplers: list[str] = []
        self.imgs: list[dict[str, str | None]] = []
        self.scripts = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "body":
            self.body = a
        elif tag == "img":
            self.imgs.append(a)
        elif tag == "script":
            self.scripts += 1
        elif tag == "tr" and "results-table" in self.stack and a.get("data-sampler"):
            self.row_samplers.append(str(a["data-sampler"]))
        if tag == "table":
            self.stack.append(str(a.get("id")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    results, inputs = synthetic()
    return write_report(tmp / "report.html", inputs, results)


def test_browser_runs_the_page_and_renders_every_part(page: Path) -> None:
    proc = _run(page.parent, "--dump-dom", page.as_uri())
    dom = _Dom()
    dom.feed(proc.stdout)
    # set by the page's own script on "load": the browser really executed it
    assert dom.body.get("data-ready") == "1"
    assert dom.body.get("data-rows") == str(len(BASE_HIT))
    assert dom.row_samplers == list(BASE_HIT)
    # every figure is an inline data: image that the browser decoded (naturalWidth > 0)
    assert len(dom.imgs) == 5
    assert all(str(i["src"]).startswith("data:image/svg+xml;base64,") for i in dom.imgs)
    assert dom.body.get("data-images") == str(len(dom.imgs))
    for section in ("verdict", "results-table", "curves", "lorenz", "popularity", "clusters",
                    "cluster-table", "examples"):
        assert section in dom.ids
    text = "".join(dom.text)
    assert EVIL_TITLE in text  # shown as text...
    assert dom.scripts == 1  # ...never as an element
    assert "Yes: cluster-goobs has the best HR@50" in text


def test_screenshot_shows_a_page_with_colour(page: Path) -> None:
    shot = page.parent / "shot.png"
    _run(page.parent, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    img = mpimg.imread(shot)
    assert img.shape[:2] == (1600, 1200)
    rgb = img[..., :3]
    ink = (rgb.min(axis=-1) < 0.9).mean()
    assert ink > 0.02, f"only {ink:.2%} of pixels are not white"
    # cluster-goobs red (#d62728) from its table row and its curves
    red = (np.abs(rgb - np.array([0xD6, 0x27, 0x28]) / 255).max(axis=-1) < 0.08).sum()
    assert red > 200, f"{red} red pixels"
