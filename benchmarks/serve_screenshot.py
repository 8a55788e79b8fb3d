#!/usr/bin/env python
"""A screenshot of the draw-a-digit page after a prediction, for the README: docs/serve.png.

    .venv/bin/python benchmarks/serve_screenshot.py [MODEL] [--out docs/serve.png]

Starts `python -m digitlab serve [MODEL]` as benchmarks/serve_latency.py does, draws a 7 on the pad with
the mouse in Debian's chromium (/usr/bin/chromium, through Playwright; `apt-get install chromium`),
presses Recognise and saves the page.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import common
from serve_latency import running_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
CHROMIUM_ARGS += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
SEVEN = [(70, 60), (210, 60), (120, 230)]  # on the 280x280 pad


def draw_seven(page) -> None:
    """SEVEN drawn on the page's pad with the mouse, as a person draws it (tests/serve/test_browser.py too)."""
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + SEVEN[0][0], box["y"] + SEVEN[0][1])
    page.mouse.down()
    for x, y in SEVEN[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
    page.mouse.up()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", help="run directory or .onnx file (default: the shipped model)")
    parser.add_argument("--out", default=str(common.REPO / "docs" / "serve.png"), help="the PNG to write")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="digitlab-serve-screenshot-") as folder:
        with running_server(args.model, Path(folder) / "serve.log") as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 800, "height": 560})
                page.goto(url)
                draw_seven(page)
                page.click("#recognise")
                page.wait_for_function("document.getElementById('seen').dataset.drawn === 'yes'", timeout=10_000)
                page.wait_for_function("document.getElementById('model').textContent !== ''", timeout=10_000)
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=args.out, full_page=True)
                print(f"{args.out}: predicted {page.text_content('#digit')} ({page.text_content('#confidence')})")
            finally:
                browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
