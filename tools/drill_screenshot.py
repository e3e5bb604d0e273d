"""Screenshot of a real drill report for the docs (`make drill-screenshot`).

Runs `failover drill --cloud CLOUD --dir DIR` (unless ``--report`` names a drill-report.html that
exists), opens the page in headless Chromium (Debian's chromium, driven by the playwright package:
no browser is downloaded) and saves a PNG of its top (the timeline and the RTO table) to OUT, by
default docs/img/drill-report.png:

    .venv/bin/python tools/drill_screenshot.py [--cloud aws] [--dir .drill/screenshot] [--out FILE]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--cloud", default="aws", help="the drill to run (default aws)")
    parser.add_argument("--dir", type=Path, default=ROOT / ".drill" / "screenshot", help="the drill's run directory")
    parser.add_argument("--report", type=Path, help="an existing drill-report.html (no drill is run)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "drill-report.png")
    parser.add_argument("--height", type=int, default=1050, help="pixels of the page's top to keep (default 1050)")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        print("drill_screenshot: needs Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 1
    page_path = args.report
    if page_path is None:
        failover = Path(sys.executable).with_name("failover")
        rc = subprocess.run([str(failover), "drill", "--cloud", args.cloud, "--dir", str(args.dir)], check=False).returncode
        page_path = args.dir / "drill-report.html"
        if rc != 0 or not page_path.exists():
            print(f"drill_screenshot: the drill failed (exit {rc}); no screenshot", file=sys.stderr)
            return 1
    from playwright.sync_api import sync_playwright

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": args.height})
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            page.screenshot(path=str(args.out), clip={"x": 0, "y": 0, "width": 1200, "height": args.height})
        finally:
            browser.close()
    print(f"drill_screenshot: {args.out} ({args.out.stat().st_size // 1024} KiB) from {page_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
