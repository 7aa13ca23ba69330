"""The HTML report in a real headless Chromium: it renders, its charts are drawn, no console errors.

Needs Debian's ``chromium`` (``apt-get install -y chromium``). Without it the
tests skip, unless ``EXO_REQUIRE_BROWSER=1`` (CI) turns the skip into a failure.
The screenshot is kept in ``artifacts/`` (git-ignored); with
``EXO_UPDATE_DOCS_SCREENSHOT=1`` it also replaces ``docs/img/report.png``.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from exo.compiler import figures as fmt
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


# --- the charts a new user reads: checked where they are drawn, at two widths -------------

#: Measures the laid-out page (CSS pixels) and writes the figures into the DOM, where
#: ``--dump-dom`` returns them: x-axis labels of the what-if charts, their axis titles,
#: the Gantt bars and their labels.
MEASURE = """<script>
(function () {
  function box(el) { var r = el.getBoundingClientRect();
    return {l: r.left, r: r.right, t: r.top, b: r.bottom, w: r.width, text: el.textContent}; }
  var out = {whatif: [], gantt: []};
  var charts = document.querySelectorAll("svg.whatif");
  for (var i = 0; i < charts.length; i++) {
    var c = charts[i], labels = c.querySelectorAll("text.xlabel"), titles = [];
    var ys = c.querySelectorAll("text.axis-title.y");
    for (var k = 0; k < ys.length; k++) { titles.push(box(ys[k])); }
    var xs = [];
    for (var j = 0; j < labels.length; j++) { xs.push(box(labels[j])); }
    out.whatif.push({svg: box(c), labels: xs, ytitles: titles});
  }
  var rows = document.querySelectorAll("svg.gantt g.gantt-row");
  var svg = document.querySelector("svg.gantt");
  for (var g = 0; g < rows.length; g++) {
    out.gantt.push({step: rows[g].getAttribute("data-step"),
      bar: box(rows[g].querySelector("rect.bar")),
      label: box(rows[g].querySelector("text.bar-label")), svg: box(svg)});
  }
  var pre = document.createElement("pre");
  pre.id = "measured";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""

WIDTHS = (1100, 640)


@cache
def new_user_page() -> str:
    """overnight_classify: a 2-minute step, replicas, quotas on unused GPUs, and what-if
    sweeps whose values sit close together."""
    compiled = compile_file(REPO / "examples" / "overnight_classify.exo")
    plan = optimize(compiled.program, compiled.catalog)
    plan = plan.model_copy(update={"solve_time_s": None})

    def planner(p: object) -> Plan:
        return optimize(p, compiled.catalog)  # type: ignore[arg-type]

    sweeps = [
        whatif.run_sweep(compiled.program, whatif.parse_what_if(spec), plan, planner)
        for spec in ("deadline=6h,8h,10h,12h,none", "budget=$20,$40")
    ]
    report = build_report(plan, compiled.program, compiled.catalog)
    return render_html(report, what_if=sweeps, solve_time=False)


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["l"] < b["r"] and b["l"] < a["r"] and a["t"] < b["b"] and b["t"] < a["b"]


def _measured(browser: str, tmp_path: Path, width: int) -> dict[str, Any]:
    page = tmp_path / f"report-{width}.html"
    page.write_text(new_user_page().replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    r = run_browser(
        browser, page, tmp_path / "profile", f"--window-size={width},2000", "--dump-dom"
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert console_messages(r.stderr) == []
    m = re.search(r'<pre id="measured">(.*?)</pre>', r.stdout, re.S)
    assert m, r.stdout[-2000:]
    data: dict[str, Any] = json.loads(html.unescape(m.group(1)))
    return data


@pytest.mark.parametrize("width", WIDTHS)
def test_what_if_axis_labels_do_not_overlap_and_axes_have_titles(
    browser: str, tmp_path: Path, width: int
) -> None:
    data = _measured(browser, tmp_path, width)
    assert len(data["whatif"]) == 4  # cost and makespan, for each of two sweeps
    for chart in data["whatif"]:
        labels = chart["labels"]
        assert len(labels) >= 2
        for i, a in enumerate(labels):
            for b in labels[i + 1 :]:
                assert not _overlap(a, b), (a["text"], b["text"])
            assert chart["svg"]["l"] <= a["l"] and a["r"] <= chart["svg"]["r"] + 0.5, a
        (title,) = chart["ytitles"]
        assert title["text"] in ("expected cost", "makespan at 95%")
        assert title["w"] > 0 and chart["svg"]["l"] <= title["l"]
    # the current deadline (9h00m) sits between 8h and 10h: all three are still named
    texts = {x["text"] for x in data["whatif"][0]["labels"]}
    assert {"8h00m", "9h00m", "10h00m", "no limit"} <= texts


@pytest.mark.parametrize("width", WIDTHS)
def test_gantt_bars_are_visible_and_labelled_with_replicas(
    browser: str, tmp_path: Path, width: int
) -> None:
    data = _measured(browser, tmp_path, width)
    plan = {s.name: s for s in optimize_example().steps}
    for row in data["gantt"]:
        s = plan[row["step"]]
        assert row["bar"]["w"] >= 4, row  # the 2-minute `split` too
        label = row["label"]
        assert label["text"] == f"x{s.replicas} · {fmt.hours(s.p_duration_h)}"
        assert row["svg"]["l"] <= label["l"] and label["r"] <= row["svg"]["r"], label
        assert label["w"] > 0
    assert plan["split"].p_duration_h * 60 < 5  # a step of a few minutes in a 9-hour plan


def test_unused_quotas_are_marked_in_the_page() -> None:
    page = new_user_page()
    rows = re.findall(r"<tr><td>quota (\w+)</td><td>\d+</td><td class=\"(\w+)\">", page)
    states = dict(rows)
    assert states["A100"] == "unused" and states["L4"] == "unused"
    assert states["A10G"] == "slack"
    assert "peak 0" not in page


@pytest.mark.parametrize("width", WIDTHS)
def test_new_user_screenshots(browser: str, tmp_path: Path, width: int) -> None:
    """Screenshots at two widths, kept in artifacts/ to look at."""
    page = tmp_path / "report.html"
    page.write_text(new_user_page(), encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"report-new-user-{width}.png"
    shot.unlink(missing_ok=True)
    r = run_browser(
        browser, page, tmp_path / "profile", f"--window-size={width},2600", f"--screenshot={shot}"
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert console_messages(r.stderr) == []
    w, h, variety = png_size_and_variety(shot.read_bytes())
    assert (w, h) == (width, 2600) and variety > 64


@cache
def optimize_example() -> Plan:
    compiled = compile_file(REPO / "examples" / "overnight_classify.exo")
    return optimize(compiled.program, compiled.catalog)
