"""The README's screenshots of the Inside, Label issues and Runs (predictions
over training) pages, on the CamVid releases and frames:

    python tests/dashboard_screenshots.py --camvid ../shared/datasets/camvid \\
        --runs RUNS --run NAME --out assets/screenshots

RUNS is a runs folder holding the run NAME, whose predictions over training
the Runs page shows. It starts the dashboard on a free localhost port, drives
it in headless Chromium (Debian's /usr/bin/chromium) as the browser tests do,
and stops it. Not a test: pytest does not collect it.
"""

import argparse
import re
import sys
import tempfile
from pathlib import Path

from playwright import sync_api

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dashboard_server import dashboard_server  # noqa: E402
from test_dashboard_browser import (BROWSER_ARGS, CHROMIUM, assert_no_exception,  # noqa: E402
                                    choose, open_page, wait_for_app_run)


def choose_starting(page, label, start):
    """The option of a select box that starts with `start` (a checkpoint's
    option goes on with its description)."""
    field = page.get_by_test_id("stSelectbox").filter(has_text=label).locator("input")
    field.click()
    field.type(start.strip())  # the list shows a few options at a time: filter it
    page.get_by_role("option").filter(has_text=re.compile(f"^{re.escape(start)}")).first.click()
    wait_for_app_run(page)


def set_number(page, label, value):
    field = page.get_by_label(label)
    field.fill(str(value))
    field.press("Enter")
    wait_for_app_run(page)


def inside(page, url, camvid, out):
    open_page(page, url, "inside", 2700)
    choose_starting(page, "Checkpoint", "camvid/ainnoseg_w18s ")
    choose(page, "Dataset", camvid)
    set_number(page, "Pixel row (y)", 250)  # the pavement, bottom left of frame 0
    set_number(page, "Pixel column (x)", 60)
    assert_no_exception(page, "inside")
    page.screenshot(path=str(out / "inside.png"))


def label_issues(page, url, camvid, out):
    open_page(page, url, "label_issues", 2000)
    choose_starting(page, "Checkpoint", "camvid/hrnetv2_w18s ")
    choose(page, "Dataset", camvid)
    slider = page.get_by_test_id("stSlider").filter(has_text="Images to judge")
    slider.get_by_role("slider").press("Home")
    for _ in range(11):
        slider.get_by_role("slider").press("ArrowRight")
    wait_for_app_run(page)
    page.get_by_role("button", name="Judge the first 12 images").click()
    sync_api.expect(page.get_by_text("suspected pixels (magenta)")).to_be_visible(
        timeout=600_000)
    wait_for_app_run(page)
    assert_no_exception(page, "label_issues")
    page.screenshot(path=str(out / "label_issues.png"))


def over_training(page, url, run, out):
    open_page(page, url, "", 2600)
    choose(page, "Run", run)
    heading = page.get_by_text("Predictions over training")
    heading.scroll_into_view_if_needed()
    assert_no_exception(page, "runs")
    page.screenshot(path=str(out / "over_training.png"), clip={
        "x": 0, "y": heading.bounding_box()["y"] - 20, "width": 1400, "height": 1150})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--camvid", required=True, help="the dataset picker's CamVid option")
    parser.add_argument("--runs", required=True, help="the runs folder")
    parser.add_argument("--run", required=True, help="the run whose snapshots to show")
    parser.add_argument("--out", default="assets/screenshots")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    options = ["--server.address=127.0.0.1", "--browser.gatherUsageStats=false"]
    runs = Path(args.runs).resolve()
    with (tempfile.TemporaryDirectory() as logs,
          dashboard_server(options, Path(logs) / "streamlit.log", runs=runs) as (url, _)):
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            inside(page, url, args.camvid, out)
            label_issues(page, url, args.camvid, out)
            over_training(page, url, args.run, out)
            browser.close()
    print(f"screenshots in {out}: inside.png, label_issues.png, over_training.png")


if __name__ == "__main__":
    main()
