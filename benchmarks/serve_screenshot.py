#!/usr/bin/env python
"""A screenshot of the draw-a-number page after reading a number, for the README: docs/serve.png.

    .venv/bin/python benchmarks/serve_screenshot.py [MODEL] [--out docs/serve.png]

Starts `python -m digitlab serve [MODEL]` as benchmarks/serve_latency.py does, draws 714 on the pad with
the mouse in Debian's chromium (/usr/bin/chromium, through Playwright; `apt-get install chromium`),
presses Read and saves the page.
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
# Strokes in the pad's own pixels (560x240), each a list of points the mouse passes through.
SEVEN = [[(60, 40), (170, 40), (100, 205)]]
ONE = [[(300, 45), (300, 205)]]
FOUR = [[(420, 40), (395, 150), (490, 150)], [(465, 90), (465, 210)]]
STAR = [[(280, 30), (320, 200), (180, 90), (380, 90), (240, 200), (280, 30)]]


def draw(page, strokes: list[list[tuple[int, int]]]) -> None:
    """`strokes` drawn on the page's pad with the mouse, as a person draws them (tests/serve/test_browser.py too),
    scaled from the pad's pixels to where it is shown."""
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 560
    for points in strokes:
        page.mouse.move(box["x"] + points[0][0] * scale, box["y"] + points[0][1] * scale)
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=12)
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
                draw(page, SEVEN + ONE + FOUR)
                page.click("#read")
                page.wait_for_function("document.querySelectorAll('#digits .digit img').length > 0", timeout=10_000)
                page.wait_for_function("document.getElementById('model').textContent !== ''", timeout=10_000)
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=args.out, full_page=True)
                print(f"{args.out}: read {page.text_content('#number')} ({page.text_content('#verdict')})")
            finally:
                browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
