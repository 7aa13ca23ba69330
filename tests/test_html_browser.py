"""The HTML report in a real headless Chromium: it renders, its charts are drawn, no console errors.

Needs Debian's ``chromium`` (``apt-get install -y chromium``). Without it the
tests skip, unless ``EXO_REQUIRE_BROWSER=1`` (CI) turns the skip into a failure.
The screenshot is kept in ``artifacts/`` (git-ignored); with
``EXO_UPDATE_DOCS_SCREENSHOT=1`` it also replaces ``docs/img/report.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from functools import cache
from pathlib import Path

import pytest

from exo.compiler.frontend import compile_file
from exo.compiler.optimizer import optimize
from exo.compiler.plan import Plan
from exo.compiler.report import diff as diffmod
from exo.compiler.report import whatif
from exo.compiler.report.facts import build_report
from exo.compiler.report.html import render_html

from .conftest import REPO, SPEC

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "artifacts"
DOCS_PNG = REPO / "docs" / "img" / "report.png"
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
    "--enable-logging=stderr",
    "--v=0",
)


@cache
def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser() -> str:
    path = chromium()
    if path is None:
        reason = "headless Chromium is not installed (Debian: apt-get install -y chromium)"
        if os.environ.get("EXO_REQUIRE_BROWSER") == "1":
            pytest.fail(f"EXO_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return path


def run_browser(
    browser: str, page: Path, profile: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    profile.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def console_messages(stderr: str) -> list[str]:
    """What the page wrote to the console (errors, CSP refusals, uncaught exceptions)."""
    return re.findall(r":CONSOLE[^\]]*\] (.*)", stderr)


@cache
def report_page() -> str:
    """The on-premises example with a what-if sweep and a comparison: every chart on one page."""
    compiled = compile_file(SPEC / "examples" / "onprem" / "embed.exo")
    plan = optimize(compiled.program, compiled.catalog)
    plan = plan.model_copy(update={"solve_time_s": None})

    def planner(p: object) -> Plan:
        return optimize(p, compiled.catalog)  # type: ignore[arg-type]

    sweep = whatif.run_sweep(
        compiled.program, whatif.parse_what_if("deadline=1h,2h,4h,none"), plan, planner
    )
    earlier = next(sc.plan for sc in sweep.scenarios if sc.value == 2.0)
    compare = diffmod.diff_plans(earlier, plan, "yesterday.json", "this plan")
    report = build_report(plan, compiled.program, compiled.catalog)
    return render_html(report, what_if=[sweep], compare=compare, solve_time=False)


def png_size_and_variety(data: bytes) -> tuple[int, int, int]:
    """Width, height and the number of distinct byte values of the pixel data."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, width, height, idat = 8, 0, 0, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    pixels = zlib.decompress(idat)
    return width, height, len(set(pixels))


def test_the_report_renders_with_its_charts(browser: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(report_page(), encoding="utf-8")
    r = run_browser(browser, page, tmp_path / "profile", "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    assert console_messages(r.stderr) == []
    dom = r.stdout
    assert 'data-ready="yes"' in dom  # the inline script ran to the end
    drawn = dict(re.findall(r'<svg[^>]*class="chart ([a-z-]+)[^"]*"[^>]*data-drawn="(\d+)"', dom))
    for chart in ("gantt", "costs", "dag", "whatif"):
        assert int(drawn.get(chart, "0")) > 0, (chart, drawn)
    assert dom.count('class="gantt-row"') == 5  # one per step
    assert 'class="deadline"' in dom


def test_screenshot(browser: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(report_page(), encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    r = run_browser(
        browser, page, tmp_path / "profile", "--window-size=1100,1500", f"--screenshot={shot}"
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert console_messages(r.stderr) == []
    width, height, variety = png_size_and_variety(shot.read_bytes())
    assert (width, height) == (1100, 1500)
    assert variety > 64  # text, bars and colours, not a blank page
    print(f"screenshot: {shot}")
    if os.environ.get("EXO_UPDATE_DOCS_SCREENSHOT") == "1":
        DOCS_PNG.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_PNG)


def test_the_console_check_catches_errors(browser: str, tmp_path: Path) -> None:
    """The harness itself: a page that breaks the rules is caught."""
    page = tmp_path / "broken.html"
    broken = report_page().replace(
        "</main>",
        '<img src="http://example.invalid/x.png"><script>notDefined();</script></main>',
    )
    page.write_text(broken, encoding="utf-8")
    r = run_browser(browser, page, tmp_path / "profile", "--dump-dom")
    messages = " ".join(console_messages(r.stderr))
    assert "notDefined" in messages
    assert "Content Security Policy" in messages  # the external image is refused
