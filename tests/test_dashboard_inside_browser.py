"""The Inside page in headless Chromium (the server and browser fixtures of
test_dashboard_browser.py): hovering the prediction names the class under the
pointer, and a click on it picks the pixel whose insides the page shows.
The screenshot goes to $AINNOSEG_SCREENSHOTS (default: the test's temporary
folder) as inside.png."""

import os
import re
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the browser test needs playwright: pip install -e .[test]")
pytest.importorskip("plotly", reason="the Inside page draws with plotly: pip install -e .[test]")

from test_dashboard_browser import (CHROMIUM, assert_no_exception, dashboard,  # noqa: E402,F401
                                    open_page, page, wait_for_app_run)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="the browser test drives Debian's chromium (/usr/bin/chromium): "
           "apt-get install chromium")
WIDTH, HEIGHT = 320, 256  # the synthetic scenes' size


def at_pixel(area, y, x):
    """The page coordinates of image pixel (y, x) in a plot area's box. The
    browser moves the mouse in whole screen pixels, about 1.5 image pixels
    here, so the pixel under it may be a neighbour."""
    box = area.bounding_box()
    return (box["x"] + box["width"] * (x + 0.5) / WIDTH,
            box["y"] + box["height"] * (y + 0.5) / HEIGHT)


def test_hover_names_the_class_and_a_click_picks_the_pixel(dashboard, page):
    url, runs = dashboard
    open_page(page, url, "inside", 2700)
    heading = page.get_by_test_id("stHeading").filter(has_text="Pixel (")
    sync_api.expect(heading).to_have_text(re.compile(r"Pixel \(y=128, x=160\)"))
    area = page.get_by_test_id("stPlotlyChart").first.locator(".nsewdrag").first
    page.mouse.move(*at_pixel(area, 20, 170))  # the sky above the street
    sync_api.expect(page.locator(".hoverlayer").get_by_text("sky")).to_be_visible()
    # Plotly clicks the point it last hovered: hover first, as a hand does.
    page.mouse.move(*at_pixel(area, 200, 60))  # the sidewalk, bottom left
    sync_api.expect(page.locator(".hoverlayer").get_by_text("sidewalk")).to_be_visible()
    page.mouse.click(*at_pixel(area, 200, 60))
    wait_for_app_run(page)
    sync_api.expect(heading).to_have_text(re.compile(r"Pixel \(y=(199|200|201), x=(59|60|61)\): "
                                                     r"sidewalk"))
    y, x = re.search(r"y=(\d+), x=(\d+)", heading.inner_text()).groups()
    assert page.get_by_label("Pixel row (y)").input_value() == y
    assert page.get_by_label("Pixel column (x)").input_value() == x
    assert_no_exception(page, "inside")
    shots = Path(os.environ.get("AINNOSEG_SCREENSHOTS") or runs.parent / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "inside.png"))
