"""The demo in a real browser: Debian's headless Chromium, driven by
Playwright, loads the page, runs an example with the released models, finds
the files it offers, and photographs the comparison; an error toast fails the
test.

The run uses the bundled synthetic examples. With
AINNOSEG_DEMO_SCREENSHOT=assets/screenshots/demo.png it also offers the
CamVid val frames (when CamVid is at hand), runs the default set's first
example and writes the README's screenshot there.
"""

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[demo]')")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (pip install playwright)")

from demo_helpers import load_handlers, running_demo  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ERROR_TOAST = '[data-testid="toast-body"].error'
pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(),
                                reason="Debian's chromium is missing at /usr/bin/chromium "
                                       "(apt-get install -y chromium)")


def test_an_example_runs_in_the_browser_and_the_comparison_is_photographed(tmp_path):
    target = os.environ.get("AINNOSEG_DEMO_SCREENSHOT")
    handlers = load_handlers()
    settings = handlers.Settings() if target else handlers.Settings(camvid=None)
    if not settings.store.sets():
        pytest.skip("no HRNet, DANet or AinnoSeg release under assets/checkpoints")
    with running_demo(settings) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            page.locator(".gallery-item").first.click(timeout=60_000)
            # The ranking table appears once every model has run (the examples have masks).
            page.wait_for_selector(f"#comparison table, {ERROR_TOAST}", timeout=240_000)
            assert page.locator(ERROR_TOAST).count() == 0, page.locator(ERROR_TOAST).inner_text()
            page.wait_for_timeout(1000)  # let the last pictures load
            assert page.locator(ERROR_TOAST).count() == 0, page.locator(ERROR_TOAST).inner_text()
            shown = page.locator("#comparison img")
            assert shown.count() >= 5  # predictions, error maps, keys, disagreement
            # each model's label map and overlay, and the scores, offered as files
            sync_api.expect(page.locator("#comparison").get_by_text("_scores")).to_be_visible()
            assert page.locator("#comparison").get_by_text("_labels").count() >= 3
            screenshot = tmp_path / "demo.png"
            page.locator("#comparison").screenshot(path=screenshot)
        finally:
            browser.close()
    assert screenshot.stat().st_size > 50_000
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, target)
