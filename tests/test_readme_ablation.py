"""The README's CamVid ablation tables show what the ablations' runs recorded
(assets/ablation/<plan>.json, written by `ainnoseg ablation collect`)."""

import json
import statistics
from pathlib import Path

import pytest

from ainnoseg.runs import ablation, ablation_table

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

# Each plan, the record collected from its runs, and the README section that shows it.
PLANS = {
    "camvid_cpu": ("camvid.json", "#### 256x320 crops, 1150 iterations, two seeds"),
    "camvid_screen": ("camvid_screen.json", "#### Screen: one change at a time, reduced budget"),
    "camvid_full": ("camvid_full.json", "#### The released budget: 4600 iterations"),
}


def plan_path(plan):
    return ROOT / "configs" / "ablation" / f"{plan}.yaml"


def record(plan):
    return json.loads((ROOT / "assets" / "ablation" / PLANS[plan][0]).read_text())


def section(heading):
    """The README from `heading` to the next heading of its level or above."""
    level = heading.split(" ", 1)[0]
    text = README.split(heading, 1)[1]
    for depth in range(2, len(level) + 1):
        text = text.split("\n" + "#" * depth + " ", 1)[0]
    return text


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_the_readme_table_and_commands_are_the_records(plan):
    text = section(PLANS[plan][1])
    assert ablation_table.markdown_table(record(plan)) in text
    assert ablation_table.commands_list(record(plan)) in text


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_the_records_means_and_spreads_are_those_of_its_runs(plan):
    recorded = record(plan)
    assert [entry["name"] for entry in recorded["settings"]] == [
        setting.name for setting in ablation.load_plan(plan_path(plan)).settings]
    for entry in recorded["settings"]:
        for key in entry.get("mean", {}):
            values = [run["metrics"][key] for run in entry["runs"]]
            assert entry["mean"][key] == pytest.approx(statistics.fmean(values))
            assert entry["std"][key] == pytest.approx(statistics.pstdev(values))


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_the_record_is_what_the_run_directories_hold_where_they_are_here(plan):
    loaded = ablation.load_plan(plan_path(plan), root=ROOT / "runs" / "ablation")
    if not loaded.root.is_dir():
        pytest.skip(f"the ablation's run directories are not in {loaded.root} (they are not "
                    "part of a clone); the record was collected from them")
    # Runs whose directories are not here keep their recorded entries.
    collected = ablation.collect(loaded, earlier=record(plan))
    relative = json.loads(json.dumps(collected).replace(f"{ROOT}/", ""))
    assert relative == record(plan), (
        f"the runs have moved on since the record was collected: ainnoseg ablation collect "
        f"configs/ablation/{plan}.yaml --out assets/ablation/{PLANS[plan][0]}")


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_the_records_releases_are_their_manifests(plan):
    loaded = ablation.load_plan(plan_path(plan))
    assert record(plan).get("releases", []) == ablation.release_entries(loaded)


# Inference variants of the released models, each an `ainnoseg eval --json`
# record in assets/ablation/inference/<model>_<view>.json; 7 scales + flip is
# the manifest's.
VIEWS = {"single": "single scale", "ms3_flip": "3 scales + flip",
         "slide": "256x320 windows"}
INFERENCE = ROOT / "assets" / "ablation" / "inference"
MANIFEST = json.loads((ROOT / "assets" / "checkpoints" / "camvid" / "manifest.json").read_text())
CLASSES = ("Pole", "SignSymbol", "Pedestrian", "Bicyclist")


def _cells(metrics):
    return [f"{100 * metrics['mean_iou']:.2f}", f"{100 * metrics['boundary_iou']:.2f}",
            *(f"{100 * metrics['class_iou'][name]:.1f}" for name in CLASSES)]


def inference_rows():
    rows = []
    for model in ("hrnetv2_w18s", "ocrnet_hrnet_w18s", "ainnoseg_w18s_ocr_on_da", "ainnoseg_w18s"):
        for view, label in VIEWS.items():
            path = INFERENCE / f"{model}_{view}.json"
            if path.is_file():
                rows.append([f"`{model}`", label, *_cells(json.loads(path.read_text()))])
        seven = MANIFEST[model]["val"]["multi_scale_flip"]
        rows.append([f"`{model}`", "7 scales + flip (manifest)", *_cells(seven)])
    return rows


def test_the_inference_table_is_the_eval_records():
    text = section("#### Inference: scales and windows")
    table = [[cell.strip() for cell in line.strip("|").split("|")]
             for line in text.splitlines() if line.startswith("| `")]
    assert table == inference_rows()
