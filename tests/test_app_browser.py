"""The web app in a real headless browser (the system Chromium driven by Playwright).

The test installs nothing: `make test` / `.ci/run` set up Chromium first (scripts/install_chromium.sh,
Debian package `chromium`). Without a browser the tests are skipped with the reason in the pytest
summary. MAGICANIMATE_CHROMIUM=/path/to/chromium picks another binary. Set
MAGICANIMATE_SCREENSHOT=docs/images/app.png to also save the README screenshot.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytest.importorskip("gradio", reason="the web app needs gradio (pip install -e '.[app,test]')")
pytestmark = pytest.mark.filterwarnings(  # gradio's queue with pandas 3, not ours
    "ignore:.*(no_silent_downcasting|copy keyword).*:DeprecationWarning")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (test extra)")

from magicanimate.app.service import default_examples  # noqa: E402
from magicanimate.app.ui import build_app, launch_app  # noqa: E402
from magicanimate.synthetic.simple_person import synthetic_reference  # noqa: E402
from magicanimate.synthetic.simple_person import render_motion  # noqa: E402
from magicanimate.io.video import write_video  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RESULT_TIMEOUT_MS = 240_000  # one tiny generation takes seconds, but CI has 2 cores
MAX_FRAMES = 24
VIEWPORT = {"width": 1280, "height": 900}
RECORD_PROGRESS = """() => {
  window.progressTexts = [];
  const box = document.querySelector('#result');
  new MutationObserver(() => window.progressTexts.push(box.innerText))
    .observe(box, {subtree: true, childList: true, characterData: true});
}"""


def find_chromium() -> Path | None:
    """$MAGICANIMATE_CHROMIUM, else `chromium` / `chromium-browser` on PATH."""
    for candidate in (os.environ.get("MAGICANIMATE_CHROMIUM"), "chromium", "chromium-browser"):
        path = candidate and shutil.which(candidate)
        if path:
            return Path(path)
    return None


@pytest.fixture(scope="session")
def chromium() -> Path:
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium found (chromium / chromium-browser / $MAGICANIMATE_CHROMIUM): run "
                    "`make browser` or `sudo apt-get install chromium` to run the browser test")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Test-made inputs: a PNG reference, a 12-frame 12 fps motion and a too-long 30-frame motion."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("browser_inputs")
    reference = folder / "reference.png"
    Image.fromarray(synthetic_reference((256, 256), seed=2)).save(reference)
    return {
        "reference": reference,
        "motion": write_video(folder / "motion.mp4", render_motion(12, (96, 96), seed=2), 12.0),
        "long": write_video(folder / "long.mp4", render_motion(30, (96, 96), seed=2), 25.0),
        "examples": folder / "examples",
    }


@pytest.fixture(scope="module")
def server(files, tmp_path_factory):
    """The app with the tiny weights, served from this process on a free localhost port."""
    from goldens import tiny_model

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo = build_app(tiny_model(), max_frames=MAX_FRAMES, examples=default_examples(files["examples"]),
                     output_dir=tmp_path_factory.mktemp("app_outputs"))
    url = launch_app(demo, port=port, block=False, quiet=True)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def browser(chromium):
    """Headless chromium (Playwright gives it a fresh profile, i.e. a new --user-data-dir)."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on the app; records every request that leaves 127.0.0.1."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.outside = []
    page.on("request", lambda r: page.outside.append(r.url)
            if urlparse(r.url).hostname not in ("127.0.0.1", "localhost") and not r.url.startswith(("data:", "blob:"))
            else None)
    page.goto(server)
    page.wait_for_selector("#animate", timeout=60_000)
    yield page
    context.close()


def upload(page, reference: Path, motion: Path) -> None:
    """Put files into the reference and motion upload areas and wait for their previews."""
    page.locator("#reference input[type=file]").set_input_files(str(reference))
    page.locator("#motion input[type=file]").set_input_files(str(motion))
    page.wait_for_selector("#reference img", timeout=60_000)
    page.wait_for_selector("#motion video", timeout=60_000)


def test_browser_refuses_a_motion_above_the_frame_limit(page, files):
    upload(page, files["reference"], files["long"])
    page.click("#animate")
    message = page.get_by_text(f"more than {MAX_FRAMES} frames").first
    message.wait_for(timeout=60_000)
    assert "trim it" in message.inner_text()
    assert page.locator("#result video").count() == 0
    assert page.outside == []


def test_browser_animates_with_tiny_weights(page, files, tmp_path):
    upload(page, files["reference"], files["motion"])
    steps = page.locator("#steps input[type=number]")
    steps.fill("2")
    steps.press("Enter")
    page.locator("#size textarea, #size input").first.fill("64")
    page.locator("#size textarea, #size input").first.press("Tab")
    assert page.locator("#examples, .gallery, table").count() > 0  # example inputs are on the page

    # The progress bar: Gradio shows the stage label and percentage over the outputs while sampling;
    # an observer records every text it shows, so a fast stage cannot slip between two polls.
    page.evaluate(RECORD_PROGRESS)
    start = time.monotonic()
    page.click("#animate")
    page.wait_for_function(
        "() => { const v = document.querySelector('#result video');"
        " return v && v.readyState >= 1 && v.videoWidth > 0; }",
        timeout=RESULT_TIMEOUT_MS)
    elapsed = time.monotonic() - start
    shown = page.evaluate("() => window.progressTexts")
    assert any("Denoising" in text and "%" in text for text in shown), shown
    assert any("Decoding" in text for text in shown), shown
    size = page.evaluate("() => { const v = document.querySelector('#result video');"
                         " return [v.videoWidth, v.videoHeight, v.duration]; }")
    assert size[:2] == [64, 64]
    assert size[2] == pytest.approx(1.0, abs=0.1)  # 12 frames at the motion's 12 fps
    page.wait_for_function("() => { const v = document.querySelector('#grid video');"
                           " return v && v.readyState >= 1 && v.videoWidth === 3 * 64 + 8; }", timeout=60_000)
    assert "12 frames at 12 fps" in page.locator("#info").inner_text()
    assert page.outside == [], f"the page made requests off this machine: {page.outside}"

    page.wait_for_timeout(500)  # let the players paint a frame
    shot = tmp_path / "app.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    target = os.environ.get("MAGICANIMATE_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
    print(f"generation in the browser took {elapsed:.1f} s; screenshot {shot}")
