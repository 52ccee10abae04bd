"""The dashboard end to end in headless Chromium, as Streamlit's own
e2e_playwright/conftest.py tests apps: a module-scoped fixture starts the real
server on a free localhost port, waits for /_stcore/health and always stops
it. The test opens every page, launches a tiny training run from the Launch
page, waits for it to finish, checks that the Runs page says so, compares two
checkpoints and scores the worst images on the Predictions page, judges the
labels of three images on the Label issues page, fails on any
Streamlit exception box and saves a screenshot of each page.

Screenshots go to $AINNOSEG_SCREENSHOTS (default: the test's temporary
folder); the server lists $AINNOSEG_E2E_RUNS (default: an empty temporary
folder). The README's screenshots were made with

    AINNOSEG_SCREENSHOTS=assets/screenshots AINNOSEG_E2E_RUNS=/tmp/runs \\
        pytest tests/test_dashboard_browser.py

where /tmp/runs held a finished two-round self-training run on the synthetic
scenes (the README gives its command) and no run named "tiny".
"""

import os
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the browser test needs playwright: pip install -e .[test]")
pytest.importorskip("streamlit", reason="the browser test needs streamlit: pip install -e .[test]")

from dashboard_server import dashboard_server  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="the browser test drives Debian's chromium (/usr/bin/chromium): "
           "apt-get install chromium")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
RUN_TIMEOUT_S = 180  # the tiny run on a busy 2-core machine
# page path, screenshot name, viewport height (the pages scroll inside their frame)
PAGES = [("", "runs", 1300), ("rounds", "rounds", 2300), ("mosaic", "mosaic", 1400),
         ("predictions", "predictions", 1900), ("label_issues", "label_issues", 1700)]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """(url, runs folder) of a dashboard server, stopped after the module."""
    runs = Path(os.environ.get("AINNOSEG_E2E_RUNS") or tmp_path_factory.mktemp("runs"))
    log_path = tmp_path_factory.mktemp("server") / "streamlit.log"
    options = ["--server.address=127.0.0.1", "--browser.gatherUsageStats=false"]
    with dashboard_server(options, log_path, runs=runs) as (url, _):
        yield url, runs


@pytest.fixture(scope="module")
def page(dashboard):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1100})
        finally:
            browser.close()


def wait_for_app_run(page, timeout_ms=120_000):
    """Wait until the script has finished running (Streamlit's e2e helper)."""
    page.wait_for_timeout(300)
    page.locator("[data-testid='stApp'][data-test-connection-state='CONNECTED']").wait_for(
        state="attached", timeout=timeout_ms)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(
        state="attached", timeout=timeout_ms)
    page.wait_for_timeout(500)


def assert_no_exception(page, where):
    boxes = page.get_by_test_id("stException")
    assert boxes.count() == 0, f"{where}: {boxes.first.inner_text()}"


def open_page(page, url, path, height):
    page.set_viewport_size({"width": 1400, "height": height})
    page.goto(f"{url}/{path}")
    wait_for_app_run(page)
    assert_no_exception(page, path or "runs")


def scroll_to_top(page):
    """Every scrolled container back at its top (a click scrolls the page to
    what it changed), so that a screenshot starts at the page's title."""
    page.evaluate("document.querySelectorAll('*').forEach(e => { e.scrollTop = 0; })")
    page.wait_for_timeout(300)


def choose(page, label, option):
    page.get_by_test_id("stSelectbox").filter(has_text=label).locator("input").click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_for_app_run(page)


def slide_to_three(page, label):
    """The slider `label` at 3: its first value (1), then two steps right."""
    slider = page.get_by_test_id("stSlider").filter(has_text=label).get_by_role("slider")
    slider.press("Home")
    slider.press("ArrowRight")
    slider.press("ArrowRight")
    wait_for_app_run(page)


def compare_and_score(page):
    """A second checkpoint beside the first, then the worst-images table."""
    page.get_by_test_id("stSelectbox").filter(has_text="Compare with").locator("input").click()
    page.get_by_role("option").nth(2).click()  # after "(none)" and the first checkpoint
    wait_for_app_run(page)
    slide_to_three(page, "Images to score")  # CPU time is scarce
    page.get_by_role("button", name="Score the first 3 images").click()
    wait_for_app_run(page)
    sync_api.expect(page.get_by_text("worst mIoU first")).to_be_visible()


def judge_labels(page):
    """The label quality of the first 3 images, worst first, and the worst one shown."""
    slide_to_three(page, "Images to judge")
    page.get_by_role("button", name="Judge the first 3 images").click()
    wait_for_app_run(page)
    sync_api.expect(page.get_by_text("Images, worst labels first")).to_be_visible()
    sync_api.expect(page.get_by_text("suspected pixels (magenta)")).to_be_visible()


def test_every_page_and_a_run_launched_from_the_browser(dashboard, page):
    url, runs = dashboard
    shots = Path(os.environ.get("AINNOSEG_SCREENSHOTS") or runs.parent / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    open_page(page, url, "launch", 1150)
    page.get_by_test_id("stRadio").get_by_text("training", exact=True).click()
    wait_for_app_run(page)
    choose(page, "Preset", "synthetic_tiny")
    name = page.get_by_label("Run name (a folder in the runs folder)")
    name.fill("tiny")
    name.press("Enter")
    wait_for_app_run(page)
    page.get_by_role("button", name="Start").click()
    sync_api.expect(page.get_by_text("Started")).to_be_visible(timeout=60_000)
    assert_no_exception(page, "launch")
    # The Jobs panel refreshes itself from the run directory every 2 s.
    sync_api.expect(page.get_by_text("tiny finished")).to_be_visible(
        timeout=RUN_TIMEOUT_S * 1000)
    assert_no_exception(page, "launch")
    page.screenshot(path=str(shots / "launch.png"))

    for path, shot, height in PAGES:
        open_page(page, url, path, height)
        if path == "":
            choose(page, "Run", "tiny")
            sync_api.expect(page.get_by_test_id("stMarkdown").filter(
                has_text="finished").first).to_be_visible()
        if path == "predictions":
            compare_and_score(page)
        if path == "label_issues":
            judge_labels(page)
        assert_no_exception(page, shot)
        scroll_to_top(page)
        page.screenshot(path=str(shots / f"{shot}.png"))
