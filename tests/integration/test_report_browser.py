"""The drill report page in a real headless Chromium: Debian's chromium package (`make test` installs it
where it is missing and it can), driven by the playwright package with ``executable_path`` (playwright
downloads no browser here). Without either, the module is skipped with one line saying why.

A real drill (`failover drill --cloud aws`) writes the page; the browser must render it with no
console error, its one SVG timeline must hold every phase of both runs in order (read from the SVG
elements' data attributes and their rendered boxes), and the screenshot must not be blank. A page
whose service and client names are ``<script>`` shows them as text and runs nothing.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any, Iterator

import pytest

from failover_engine.cli.report_html import render_drill_html
from failover_engine.core.timeline import PHASES

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# what this machine's Chromium needs to start headless with no network of its own (docs/drill-report.md)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
HOSTILE = "<script>window.__pwned = 1</script>"

if not os.path.exists(CHROMIUM):
    pytest.skip("the browser test needs Debian's chromium (/usr/bin/chromium): `make test` installs it as root; "
                "apt-get install chromium", allow_module_level=True)
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the dev extra brings it
    pytest.skip("the browser test needs the playwright package (the dev extra): pip install -e '.[dev]'",
                allow_module_level=True)
if not (BIN / "ansible-playbook").exists():  # pragma: no cover - environment problem, not a test failure
    pytest.skip(f"ansible-playbook not found next to {sys.executable}; install '.[dev]'", allow_module_level=True)


def png_pixels(data: bytes) -> tuple[int, int, list[int]]:
    """(width, height, grey levels) of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks)), width * bpp
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(line)
        prev = line
    grey = [sum(row[x * bpp:x * bpp + 3]) // 3 for row in rows[::4] for x in range(0, width, 4)]
    return width, height, grey


@pytest.fixture(scope="module")
def drill_pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real aws drill's page, and the same report rendered with hostile names."""
    tmp = tmp_path_factory.mktemp("browser")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_HOME": str(tmp / "ansible-home")}
    proc = subprocess.run([str(BIN / "failover"), "drill", "--cloud", "aws", "--dir", str(tmp / "aws")], check=False,
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    report = json.loads((tmp / "aws" / "drill-report.json").read_text())
    hostile = json.loads(json.dumps(report))
    hostile["service"] = HOSTILE
    hostile["client"]["clients"][0]["name"] = HOSTILE
    (tmp / "hostile.html").write_text(render_drill_html(hostile))
    return {"report": report, "page": tmp / "aws" / "drill-report.html", "hostile": tmp / "hostile.html", "tmp": tmp}


@pytest.fixture(scope="module")
def browser(drill_pages: dict[str, Any]) -> Iterator[Any]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=120_000)
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser: Any, path: Path) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type in (
        "error", "warning") else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url}"))
    page.goto(path.as_uri(), wait_until="load", timeout=60_000)
    return page, problems


@pytest.mark.timeout(300)
def test_the_drill_page_renders_its_timeline_in_chromium(browser: Any, drill_pages: dict[str, Any]) -> None:
    page, problems = open_page(browser, drill_pages["page"])
    try:
        phases = page.eval_on_selector_all("svg#timeline rect.phase", """els => els.map(e => ({
            stage: e.dataset.stage, phase: e.dataset.phase, start: +e.dataset.start, end: +e.dataset.end,
            x: e.getBoundingClientRect().x, width: e.getBoundingClientRect().width}))""")
        lanes = page.eval_on_selector_all("svg#timeline", "els => els.length")
        requests = page.eval_on_selector_all("svg#timeline rect.request", """els => els.map(e => ({
            ok: e.classList.contains('ok'), endpoint: e.dataset.endpoint, x: e.getBoundingClientRect().x,
            width: e.getBoundingClientRect().width}))""")
        served = page.eval_on_selector_all("svg#timeline rect.served", "els => els.map(e => e.dataset.endpoint)")
        result = page.inner_text("#result")
        png = page.screenshot(full_page=True)
        (drill_pages["tmp"] / "drill-report.png").write_bytes(png)
    finally:
        page.close()
    assert problems == []
    assert lanes == 1 and result == "SUCCEEDED"
    order = [name for name, _a, _b in PHASES]
    expected = ["detection", "decision", "apply", "validation", "propagation"]  # no promotion on aws
    for stage in ("failover", "failback"):
        mine = [p for p in phases if p["stage"] == stage]
        assert [p["phase"] for p in mine] == expected, stage
        assert [p["phase"] for p in mine] == sorted((p["phase"] for p in mine), key=order.index)
        starts, xs = [p["start"] for p in mine], [p["x"] for p in mine]
        assert starts == sorted(starts) and xs == sorted(xs), (stage, mine)  # drawn in time order
        assert all(p["width"] > 0 and p["end"] >= p["start"] for p in mine)
        tl = drill_pages["report"][stage]["timeline"]
        assert {p["phase"]: round(p["end"] - p["start"], 3) for p in mine} == pytest.approx(
            {k: round(v, 3) for k, v in tl["phases_s"].items()}, abs=0.002)
    assert max(p["x"] for p in phases if p["stage"] == "failover") < min(
        p["x"] for p in phases if p["stage"] == "failback")
    assert any(not r["ok"] for r in requests) and {r["endpoint"] for r in requests if r["ok"]} == {"use1", "usw2"}
    assert all(r["width"] > 0 for r in requests) and set(served) == {"use1", "usw2"}
    width, height, grey = png_pixels(png)
    mean = sum(grey) / len(grey)
    variance = sum((g - mean) ** 2 for g in grey) / len(grey)
    assert width >= 1280 and height > 900 and variance > 100, (width, height, variance)  # not a blank page
    assert len(set(grey)) > 20


@pytest.mark.timeout(300)
def test_hostile_names_show_as_text_and_run_nothing(browser: Any, drill_pages: dict[str, Any]) -> None:
    page, problems = open_page(browser, drill_pages["hostile"])
    try:
        pwned = page.evaluate("() => window.__pwned")
        scripts = page.eval_on_selector_all("script", "els => els.length")
        heading = page.inner_text("h1")
        labels = page.eval_on_selector_all("svg#timeline rect.request", "els => [...new Set(els.map(e => e.dataset.client))]")
    finally:
        page.close()
    assert problems == [] and pwned is None and scripts == 0
    assert HOSTILE in heading and labels == [HOSTILE]
