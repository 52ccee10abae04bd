"""What a launch form needs before `ainnoseg.runs.jobs.launch`: the presets, the
dataset folders at hand, a first look at a dataset, and the form's values as
key=value overrides (an argument list, never a shell string).

    preset = next(p for p in list_presets() if p["name"] == "selftrain_synthetic_quick")
    overrides = launch_overrides(data="synthetic", rounds=1, iterations=100)
    ainnoseg.runs.jobs.launch(preset["kind"], preset["path"], overrides, run_dir="runs/mine")
"""

import json
from pathlib import Path

import yaml

from ..config import ConfigError
from ..data import DataError, build_dataset, detect_layout

CONFIGS_DIR = Path(__file__).resolve().parents[2] / "configs"
SPLITS = ("train", "val", "test")


def _about(text):
    """The first paragraph of a config's leading comment."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    return " ".join(lines).split("  ")[0].strip()


def list_presets(folder=CONFIGS_DIR):
    """The config files of `folder`, sorted by name: dicts {"name", "path",
    "kind" ("selftrain" for self-training presets, else "train"), "about"
    (its leading comment), "values" (its keys)}; [] without the folder."""
    presets = []
    for path in sorted(Path(folder).glob("*.yaml")):
        text = path.read_text()
        about = _about(text)
        try:
            values = yaml.safe_load(text) or {}
        except yaml.YAMLError:  # listed all the same: launching it says what is wrong
            values, about = {}, f"{path} is not valid YAML; launching it shows where"
        values = values if isinstance(values, dict) else {}
        kind = "selftrain" if "selftrain" in path.stem or "rounds" in values else "train"
        presets.append({"name": path.stem, "path": path, "kind": kind, "about": about,
                        "values": values})
    return presets


def find_datasets(roots):
    """Dataset folders directly inside each of `roots` (those that exist):
    folders in a labelled layout (ADE20K, CamVid, images/ + masks/), sorted."""
    found = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if folder.is_dir() and detect_layout(folder) != "images":
                found.append(str(folder))
    return found


def describe_data(name_or_path):
    """A first look at a dataset, quick enough for every page load: {"layout",
    "splits": {split: samples}, "labelled": {split: bool}, "error": None or
    the message of a path that holds no dataset}. Files are listed, not read;
    `ainnoseg.data.check.check_dataset` reads them all."""
    name = str(name_or_path)
    report = {"layout": None, "splits": {}, "labelled": {}, "error": None}
    try:
        report["layout"] = "synthetic" if name == "synthetic" else detect_layout(name)
    except DataError as error:
        report["error"] = str(error)
        return report
    for split in SPLITS if report["layout"] != "images" else ("all",):
        try:
            dataset = build_dataset(name, split if split != "all" else "train")
        except DataError:
            continue
        report["splits"][split] = len(dataset)
        report["labelled"][split] = hasattr(dataset, "num_classes")
    if not report["splits"]:
        report["error"] = (f"{name} holds no readable split ({', '.join(SPLITS)}); "
                           "see `ainnoseg data check` for its layouts")
    return report


def parse_extra(text):
    """key=value overrides typed one per line (blank lines and # comments skipped)."""
    items = []
    for line in (text or "").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise ConfigError(f"{line!r} must look like key=value, e.g. lr=0.02")
        items.append(line)
    return items


def launch_overrides(data=None, model=None, iterations=None, unlabeled=None, rounds=None,
                     threshold=None, student_iterations=None, finetune_iterations=None,
                     student_data=None, extra=()):
    """The form's values as key=value overrides; None leaves the preset's value.
    `extra` (key=value strings, e.g. from `parse_extra`) come last and win."""
    values = {"data": data, "model": model, "iterations": iterations, "unlabeled": unlabeled,
              "rounds": rounds, "threshold": threshold,
              "student_iterations": student_iterations,
              "finetune_iterations": finetune_iterations, "student_data": student_data}
    # Strings go in as JSON, which YAML reads back as the same string (a path
    # such as "data: 2024" or "yes" stays a path).
    return [f"{key}={json.dumps(value) if isinstance(value, str) else value}"
            for key, value in values.items() if value is not None] + list(extra)


def fresh_run_name(root, name):
    """`name`, else name_2, name_3, ...: the first that is no folder in `root` yet."""
    candidate, number = str(name), 1
    while (Path(root) / candidate).exists():
        number += 1
        candidate = f"{name}_{number}"
    return candidate


def run_dir(root, name):
    """The run directory `root/name` for a run name typed in a form; a
    ValueError for a name that is not one plain folder name."""
    name = str(name).strip()
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"the run name {name!r} must be one folder name, e.g. "
                         "selftrain_mine (no slashes)")
    return Path(root) / name
