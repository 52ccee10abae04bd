"""The README's CamVid tables show what the manifest and the self-training control record hold."""

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


SELFTRAIN = table_rows("### Self-training on CamVid")
ROUNDS = sorted((name for name, entry in MANIFEST.items() if "selftrain" in entry),
                key=lambda name: MANIFEST[name]["selftrain"]["round"])


def teacher_of_first_round():
    labelled_by = Path(MANIFEST[ROUNDS[0]]["selftrain"]["labelled_by"]).name
    return next(name for name, entry in MANIFEST.items() if entry["file"] == labelled_by)


def test_self_training_table_has_the_teacher_and_every_round_in_order():
    assert ROUNDS, "the manifest holds no self-training round"
    assert list(SELFTRAIN) == [teacher_of_first_round(), *ROUNDS]


@pytest.mark.parametrize("name", ROUNDS + ["teacher"])
def test_self_training_row_matches_the_manifest(name):
    name = teacher_of_first_round() if name == "teacher" else name
    entry = MANIFEST[name]
    single = entry["val"]["single_scale"]
    pseudo = entry.get("selftrain", {}).get("pseudo")
    expected = [
        str(entry["selftrain"]["round"]) if "selftrain" in entry else "0",
        percent(single["mean_iou"], 2),
        percent(single["pixel_accuracy"], 2),
        percent(single["score"], 2),
        percent(single["boundary_iou"], 2),
        percent(pseudo["kept_share"], 1) if pseudo else "-",
        percent(pseudo["agreement"], 1) if pseudo and pseudo["agreement"] is not None else "-",
    ]
    assert SELFTRAIN[name] == expected


SYNTHETIC = json.loads((ROOT / "assets" / "checkpoints" / "synthetic" / "manifest.json").read_text())
SYNTHETIC_RESULTS = table_rows("### Results on the synthetic scenes")
SYNTHETIC_CLASSES = ("pole", "sign", "person", "bicyclist")


def test_every_synthetic_release_has_a_row():
    assert sorted(SYNTHETIC_RESULTS) == sorted(SYNTHETIC)


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_row_matches_the_manifest(name):
    single = SYNTHETIC[name]["val"]["single_scale"]
    multi = SYNTHETIC[name]["val"]["multi_scale_flip"]
    expected = [
        percent(single["mean_iou"], 2),
        percent(multi["mean_iou"], 2),
        percent(single["pixel_accuracy"], 2),
        percent(single["boundary_iou"], 2),
        percent(single["boundary_fscore"], 2),
        *(percent(single["class_iou"][label], 1) for label in SYNTHETIC_CLASSES),
    ]
    assert SYNTHETIC_RESULTS[name] == expected


CONTROL = json.loads((ROOT / "assets" / "selftrain" / "camvid_short_control.json").read_text())
CONTROL_HEADING = "| round | val mIoU, self-training | val mIoU, control |"


def control_rows():
    """The cells of the self-training section's table against the control."""
    section = README.split("### Self-training on CamVid", 1)[1]
    table = section.split(CONTROL_HEADING, 1)[1].split("\n\n", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split("|")]
            for line in table.splitlines()[2:]]


def test_control_table_shows_every_round_of_the_comparison_record():
    expected = []
    for row in CONTROL["rounds"]:
        ours, control = row["selftrain"], row["control"]
        expected.append([
            str(row["round"]), percent(ours["mean_iou"], 2), percent(control["mean_iou"], 2),
            f"{100 * (ours['mean_iou'] - control['mean_iou']):+.2f}",
            percent(ours["boundary_iou"], 2), percent(control["boundary_iou"], 2),
            *(f"{percent(ours['class_iou'][label], 1)} / {percent(control['class_iou'][label], 1)}"
              for label in ("Pole", "SignSymbol")),
        ])
    assert control_rows() == expected


def test_the_control_record_is_of_the_published_rounds():
    published = {MANIFEST[name]["selftrain"]["round"]: MANIFEST[name] for name in ROUNDS}
    assert sorted(published) == [row["round"] for row in CONTROL["rounds"]][1:]
    for row in CONTROL["rounds"][1:]:  # the release is the round's student in float16
        single = published[row["round"]]["val"]["single_scale"]
        assert abs(single["mean_iou"] - row["selftrain"]["mean_iou"]) < 0.005
