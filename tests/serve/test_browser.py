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


def test_a_correction_on_the_page_is_kept_as_a_sample_and_can_be_removed(tmp_path):
    from playwright.sync_api import sync_playwright

    from digitlab.store.samples import open_samples

    folder = tmp_path / "samples"
    options = ("--samples", str(folder))
    with running_server(None, tmp_path / "serve.log", options=options) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 800, "height": 900})
            page.goto(url)
            page.wait_for_function("document.getElementById('model').textContent !== ''", timeout=10_000)
            draw(page, SEVEN + ONE)
            page.click("#read")
            page.wait_for_function("document.querySelectorAll('#digits .digit img').length === 2", timeout=10_000)
            assert page.locator("#correct").is_visible()
            page.locator("#digits .digit").nth(1).click()  # the second digit: say it is a 4 (a person's open 4)
            page.click('#labels button[data-label="4"]')
            page.wait_for_function("document.getElementById('kept').dataset.sample !== undefined", timeout=10_000)
            assert page.text_content("#kept").startswith("kept as a sample of 4")
            images, labels, ids = open_samples(folder).load()
            assert labels.tolist() == [4] and ids == [page.get_attribute("#kept", "data-sample")]
            (record,) = open_samples(folder).records()
            assert (folder / record["original"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the drawing itself
            assert images[0].max() > 128  # the 28x28 the model saw: a light digit on black

            page.click("#kept a")  # remove it again
            page.wait_for_function("document.getElementById('kept').textContent === 'removed'", timeout=10_000)
            assert open_samples(folder).records() == []
        finally:
            browser.close()
