"""Predictions over training time (TensorBoard's and W&B's image history): a
few val images a training run chose once, and its prediction of each at every
evaluation, read back as pictures beside the ground truth.

    steps = saved_steps("runs/synthetic_quick")            # [100, 200, ...]
    for row in snapshot("runs/synthetic_quick", steps[-1]):
        row["name"], row["image"], row["truth"], row["prediction"]   # uint8 (H, W, 3)
    snapshot_runs("runs/selftrain_synthetic_quick")
    # {0: {"teacher": round_0}, 1: {"student": round_1/student, "fine-tune": ...}}

The files, in a training run directory (their names: runs/layout.py):
    snapshots/images.json               the chosen val images (indices, names), classes, palette
    snapshots/images/<index>.png        each image, its longest side at most SIDE pixels
    snapshots/truth/<index>.png         its ground truth, class indices in a paletted PNG
    snapshots/step_000460/<index>.png   the prediction at the evaluation of step 460, likewise
The training run writes them (engine/snapshots.py), each file atomically, the
record after the images it names; this module is their one owner.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import viz
from ..data import DataError, read_image, read_mask
from ..files import atomic_write, json_ready
from . import layout
from .files import read_json

__all__ = ["SIDE", "read_record", "saved_steps", "snapshot", "snapshot_runs"]

SIDE = 320  # the longest side of a stored picture: enough to see thin classes, a few KB each
RECORD_KEYS = ("split", "indices", "names", "class_names", "palette")


def _folder(run_dir):
    return Path(run_dir) / layout.SNAPSHOTS


def _file(folder, index):
    return Path(folder) / f"{index}.png"


# Writing (the training run)


def restart(run_dir, step):
    """Make the snapshots read as one run continued from `step`, as its log
    does: from step 0 (a new start) none are kept, not even the chosen images;
    on a resume, those of evaluations after `step` go (a killed run saves them
    again), with any file a killed write left half-made."""
    folder = _folder(run_dir)
    if step == 0:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for later, saved in layout.snapshot_dirs(run_dir).items():
        if later > step:
            shutil.rmtree(saved, ignore_errors=True)
    for leftover in folder.glob("**/.*.tmp"):
        leftover.unlink(missing_ok=True)


def record_images(run_dir, split, samples, class_names, palette):
    """Store the chosen val images and their ground truth, then the record
    that names them; returns the record.

    samples: (index, name, uint8 image (H, W, 3), (H, W) class indices) each.
    """
    folder = _folder(run_dir)
    for index, _, image, truth in samples:
        _write_png(_shrink(Image.fromarray(np.asarray(image, np.uint8)), Image.BILINEAR),
                   _file(folder / layout.SNAPSHOT_IMAGES, index))
        _write_png(_labels_png(truth, palette), _file(folder / layout.SNAPSHOT_TRUTH, index))
    record = {"split": split, "indices": [int(index) for index, *_ in samples],
              "names": [name for _, name, *_ in samples], "class_names": list(class_names),
              "palette": [list(map(int, color)) for color in palette]}
    text = json.dumps(json_ready(record), indent=2)
    atomic_write(folder / layout.SNAPSHOT_RECORD, lambda handle: handle.write(text.encode()))
    return record


def save_predictions(run_dir, step, predictions, palette):
    """Store the predictions of evaluation `step`: {index: (H, W) class indices}
    at the image's full size, shrunk as its stored image was."""
    folder = layout.snapshot_dir(run_dir, step)
    for index, labels in predictions.items():
        _write_png(_labels_png(labels, palette), _file(folder, index))


def _labels_png(labels, palette):
    """(H, W) class indices as a paletted PNG picture (255, ignored, black), shrunk."""
    picture = Image.fromarray(np.asarray(labels, dtype=np.uint8))
    colors = [value for color in palette for value in color]
    picture.putpalette(colors + [0] * (768 - len(colors)))
    return _shrink(picture, Image.NEAREST)


def _shrink(picture, resample):
    width, height = picture.size
    factor = SIDE / max(width, height)
    if factor >= 1:
        return picture
    return picture.resize((max(1, round(width * factor)), max(1, round(height * factor))),
                          resample)


def _write_png(picture, path):
    atomic_write(path, lambda handle: picture.save(handle, "PNG", optimize=True))


# Reading (pages, notebooks, and a resumed run)


def read_record(run_dir):
    """The record of a training run's snapshots: {"split", "indices", "names",
    "class_names", "palette"}; None for a run that saved none (one from before
    snapshots, or with snapshot_images=0). ValueError naming the file for a
    damaged one."""
    path = _folder(run_dir) / layout.SNAPSHOT_RECORD
    record = read_json(path)
    if record is None:
        return None
    missing = [key for key in RECORD_KEYS if not isinstance(record, dict) or key not in record]
    if missing or len(record["indices"]) != len(record["names"]):
        raise ValueError(f"{path} is damaged (it lacks {', '.join(missing) or 'a name per image'})"
                         f": delete {path.parent} to leave the run without snapshots")
    return record


def saved_steps(run_dir):
    """The steps whose evaluation saved predictions in a training run, in order."""
    return list(layout.snapshot_dirs(run_dir))


def snapshot(run_dir, step):
    """The chosen val images of a training run, with their ground truth and the
    prediction of evaluation `step`, as pictures to show.

    Returns one dict per image, in the order chosen: "index" (in the val
    split), "name", "image" (uint8 (H, W, 3)), "truth" and "prediction" (the
    labels' colours over the image), and "problem": None, or a sentence
    naming a file that is missing or unreadable, whose pictures are None.
    ValueError where the run saved no snapshots or its record is damaged.
    """
    record = read_record(run_dir)
    if record is None:
        raise ValueError(f"{run_dir} saved no predictions over training (a run from before "
                         "they were kept, or with snapshot_images=0)")
    folder = _folder(run_dir)
    rows = []
    for index, name in zip(record["indices"], record["names"]):
        row = {"index": index, "name": name, "image": None, "truth": None, "prediction": None,
               "problem": None}
        try:
            row["image"] = _read(read_image, _file(folder / layout.SNAPSHOT_IMAGES, index))
            row["image"] = row["image"].permute(1, 2, 0).numpy()
            for key, labels_folder in (("truth", folder / layout.SNAPSHOT_TRUTH),
                                       ("prediction", layout.snapshot_dir(run_dir, step))):
                labels = _read(read_mask, _file(labels_folder, index)).numpy()
                row[key] = viz.overlay(row["image"], labels, record["palette"])
        except ValueError as error:  # DataError too: a missing or damaged file, a wrong size
            row["problem"] = str(error)
        rows.append(row)
    return rows


def _read(reader, path):
    """What `reader` (read_image or read_mask) reads at `path`, as a plain tensor."""
    if not path.is_file():
        raise DataError(f"{path} is missing")
    return reader(path).as_subclass(torch.Tensor)


def snapshot_runs(run_dir):
    """The training runs of a self-training run that saved predictions, by
    round: {0: {"teacher": folder}, 1: {"student": folder, "fine-tune":
    folder}, ...}; a round or phase without any is left out."""
    found = {}
    for index, folder in layout.round_dirs(run_dir).items():
        phases = ({"teacher": folder} if index == 0 else
                  {"student": folder / layout.STUDENT, "fine-tune": folder / layout.FINETUNE})
        phases = {phase: path for phase, path in phases.items() if saved_steps(path)}
        if phases:
            found[index] = phases
    return found
