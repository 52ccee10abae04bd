"""The README's CamVid results table shows what the manifest records."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = json.loads((ROOT / "assets" / "checkpoints" / "camvid" / "manifest.json").read_text())
README = (ROOT / "README.md").read_text()

CLASS_COLUMNS = ("Pole", "SignSymbol", "Pedestrian", "Bicyclist")


def table_rows(heading):
    """{name: [cells]} of the first table under `heading`, for rows whose
    first cell is a `code` name."""
    section = README.split(heading, 1)[1]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*`([^`]+)`\s*\|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
        elif rows and not line.startswith("|"):
            break
    return rows


def percent(value, decimals):
    return f"{100 * value:.{decimals}f}"


RESULTS = table_rows("### Results on CamVid")
TRAINED = sorted(name for name, entry in MANIFEST.items() if "selftrain" not in entry)


def test_every_trained_release_has_a_row():
    assert sorted(RESULTS) == TRAINED


@pytest.mark.parametrize("name", TRAINED)
def test_row_matches_the_manifest(name):
    single = MANIFEST[name]["val"]["single_scale"]
    multi = MANIFEST[name]["val"]["multi_scale_flip"]
    expected = [
        percent(single["mean_iou"], 2),
        percent(multi["mean_iou"], 2),
        percent(single["pixel_accuracy"], 2),
        percent(single["score"], 2),
        percent(single["boundary_iou"], 2),
        *(percent(single["class_iou"][label], 1) for label in CLASS_COLUMNS),
    ]
    assert RESULTS[name] == expected
