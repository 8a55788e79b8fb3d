"""The draw-a-digit page in a real browser: `python -m digitlab serve` in a subprocess, Debian's chromium
driven through Playwright draws a 7 with the mouse, presses Recognise, and reads the answer.

It needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it) and is skipped without it:
Playwright's own browser download cannot work on machines without internet.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from helpers import REPO_ROOT

# The server and the browser are started as the benchmark scripts start them (one way, in one place).
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from serve_latency import running_server  # noqa: E402
from serve_screenshot import CHROMIUM_ARGS, draw_seven  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no {CHROMIUM}: apt-get install chromium (.ci/run does)"),
]


@pytest.fixture
def server(tmp_path):
    """The base URL of `python -m digitlab serve --port 0` (a free port, which it prints) with the default model."""
    with running_server(None, tmp_path / "serve.log") as url:
        yield url


def test_a_digit_drawn_with_the_mouse_is_recognised(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 800, "height": 640})
            requests = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(server)

            page.click("#recognise")  # nothing drawn yet: the page asks for a digit, the server is not asked
            assert page.text_content("#status") == "Draw a digit first."

            draw_seven(page)
            page.click("#recognise")

            page.wait_for_function(
                "document.querySelectorAll('#bars .bar').length === 10 && "
                "document.getElementById('seen').dataset.drawn === 'yes'",
                timeout=10_000,
            )
            assert page.text_content("#digit") == "7"
            assert re.fullmatch(r"\d+\.\d% sure", page.text_content("#confidence"))
            assert page.locator("#bars .bar.best .bar-label").text_content() == "7"
            # the 28x28 image the model saw, drawn scaled up: some of its pixels are light
            light = page.evaluate(
                "() => { const c = document.getElementById('seen');"
                " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                " let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++; return n; }"
            )
            assert light > 100
            assert page.text_content("#model")  # /health's model source
            assert page.text_content("#status") == ""

            page.click("#clear")
            page.click("#recognise")
            assert page.text_content("#status") == "Draw a digit first."
            assert all(url.startswith(server) for url in requests), requests  # its own server only
        finally:
            browser.close()
