"""report.html in a real headless browser: it renders, every embedded image decodes, no errors.

Needs Debian's ``chromium`` (CI installs it); skips with the reason where it is absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from toksuite.compare import build_config, compare

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
# Injected into a copy of the report (the report itself has no script): records load errors from
# the start, and once the page has loaded marks <body> with how many images decoded.
CHECK = """<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  window.__errors.push(e.message || ("failed: " + (e.target && e.target.tagName)));
}, true);
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var errors = " errors " + window.__errors.length;
  document.body.setAttribute("data-check", ok + "/" + imgs.length + errors);
});
</script>"""


def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")


@pytest.mark.slow
def test_report_renders_with_every_image_in_a_headless_browser(tmp_path):
    chrome = browser()
    config = build_config(
        cli={
            "encoders": ["pixels-grey", "bpe-grey"],
            "params": {"bpe-grey": {"vocab_size": 300}},
            "limit": 120,
            "out": str(tmp_path / "out"),
            "budget": {"epochs": 1.0},
            "train": {"batch_size": 32},
            "probe": {"random_control": False},
            "sample": {"n_samples": 4, "n_completions": 2},
        }
    )
    results = compare(config)
    report = (tmp_path / "out" / "report.html").read_text()
    # Self-contained: no script, no stylesheet link, nothing fetched from anywhere.
    assert "<script" not in report and "<link" not in report
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", report)
    n_images = report.count("<img ")
    assert n_images == len(results["plots"]) + 2 * len(results["summary"])  # + sample grids

    page = tmp_path / "checked.html"
    page.write_text(report.replace("<head>", "<head>" + CHECK, 1))
    common = [chrome, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [*common, "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert f'data-check="{n_images}/{n_images} errors 0"' in dom, dom[-2000:]

    shot = tmp_path / "report.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
