"""The draw-a-number page in a real browser: `python -m digitlab serve` in a subprocess, Debian's chromium
driven through Playwright draws a 7 and a 1 with the mouse, presses Read and finds both read and boxed; then
draws a star and finds "not a digit" shown.

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
from serve_screenshot import CHROMIUM_ARGS, ONE, SEVEN, STAR, draw  # noqa: E402

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


def test_a_number_drawn_with_the_mouse_is_read_and_a_star_is_not_a_digit(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 800, "height": 760})
            requests = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(server)

            page.click("#read")  # nothing drawn yet: the page asks for a drawing, the server is not asked
            assert page.text_content("#status") == "Draw a digit or a number first."

            draw(page, SEVEN + ONE)  # two digits side by side
            page.click("#read")
            page.wait_for_function("document.querySelectorAll('#digits .digit img').length === 2", timeout=10_000)
            assert page.text_content("#number") == "71"
            assert page.text_content("#verdict") == "2 digits"
            confidences = page.locator("#digits .digit-confidence").all_text_contents()
            assert all(re.fullmatch(r"\d+\.\d% sure", text) for text in confidences), confidences
            assert page.locator("#bars .bar").count() == 10  # the first digit's classes
            assert page.locator("#bars .bar.best .bar-label").text_content() == "7"
            page.locator("#digits .digit").nth(1).click()  # the second digit's classes
            assert page.locator("#bars .bar.best .bar-label").text_content() == "1"
            # each digit is boxed on the pad: the overlay holds coloured pixels in both halves of the drawing
            boxed = page.evaluate(
                "() => { const c = document.getElementById('boxes');"
                " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                " const sides = [0, 0]; for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0)"
                " sides[((i / 4) % c.width) < 230 ? 0 : 1]++; return sides; }"
            )
            assert min(boxed) > 100, boxed
            # the 28x28 images the model saw: some of their pixels are light
            assert page.evaluate(
                "() => [...document.querySelectorAll('#digits img')].every(i => i.naturalWidth === 28)"
            )
            assert page.text_content("#model")  # /health's model source
            assert page.text_content("#status") == ""

            page.click("#clear")
            draw(page, STAR)
            page.click("#read")
            page.wait_for_function("document.getElementById('number').textContent === 'not a digit'", timeout=10_000)
            assert page.locator("#number.rejected").count() == 1
            assert page.text_content("#verdict")  # the reason, shown plainly

            page.click("#clear")
            page.click("#read")
            assert page.text_content("#status") == "Draw a digit or a number first."
            assert page.locator("#camera[capture]").count() == 1  # a phone offers its camera
            assert all(url.startswith(server) for url in requests), requests  # its own server only
        finally:
            browser.close()
