"""The README's screenshot of the demo on a CamVid val frame, with the CamVid
set (HRNet, DANet and AinnoSeg):

    python tests/demo_screenshot.py --camvid ../shared/datasets/camvid \\
        --out assets/screenshots/demo_camvid.png

It launches the demo on a free localhost port, runs the last example of its
gallery (a CamVid frame when CamVid is given) in headless Chromium (Debian's
/usr/bin/chromium) as the browser test does, and photographs the comparison
down to the ranking table. Not a test: pytest does not collect it. The
synthetic set's screenshot comes from the browser test itself
(AINNOSEG_DEMO_SCREENSHOT=assets/screenshots/demo.png).
"""

import argparse
import sys
from pathlib import Path

from playwright import sync_api

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_helpers import load_handlers, running_demo  # noqa: E402
from test_demo_browser import CHROMIUM, CHROMIUM_ARGS, ERROR_TOAST  # noqa: E402


def photograph(camvid, out):
    handlers = load_handlers()
    settings = handlers.Settings(camvid=camvid)
    with running_demo(settings) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            examples = page.locator(".gallery-item")
            examples.first.wait_for(timeout=60_000)
            examples.nth(examples.count() - 1).click()
            page.wait_for_selector(f"#comparison table, {ERROR_TOAST}", timeout=300_000)
            if page.locator(ERROR_TOAST).count():
                raise SystemExit(page.locator(ERROR_TOAST).inner_text())
            page.wait_for_timeout(2000)  # let the last pictures load
            top = page.locator("#comparison").bounding_box()
            # everything above the downloads, which follow the ranking table
            downloads = page.locator("#comparison").get_by_text("Downloads:").bounding_box()
            clip = {"x": top["x"], "y": top["y"], "width": top["width"],
                    "height": downloads["y"] - 8 - top["y"]}
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), clip=clip, full_page=True)
        finally:
            browser.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--camvid", required=True, help="a CamVid folder (val frames)")
    parser.add_argument("--out", default="assets/screenshots/demo_camvid.png")
    args = parser.parse_args()
    photograph(Path(args.camvid), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
