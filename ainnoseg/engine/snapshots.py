"""Predictions over training time: at each evaluation a training run predicts
a few val images it chose once, and keeps the label maps in its run directory
(the files and their reader: `ainnoseg.runs.snapshots`), so that a user
watches a model learn thin classes while it trains.

The images are chosen once per run, deterministically and spread over the
split: of every CANDIDATES evenly spaced val samples, the one whose ground
truth holds the most classes (a pole or a sign is in some scenes only). They are recorded, and
a resumed run reads them back instead of choosing again. A prediction takes
evaluation's own path at a single scale (`inference.multiscale.segment`) and
draws no random numbers, so a run trains the same with snapshots or without.
"""

import numpy as np
import torch

from ..data import sample_name, to_uint8
from ..inference.multiscale import segment
from ..runs.snapshots import read_record, record_images, restart, save_predictions

CANDIDATES = 4  # val samples looked at per image chosen


def choose_images(val_set, count):
    """Indices of `count` samples of a labelled val set (with eval transforms),
    spread over it: up to CANDIDATES x `count` evenly spaced candidates in
    `count` consecutive groups, and of each group the sample whose ground
    truth holds the most classes (the lower index among equals)."""
    if count <= 0 or len(val_set) == 0:
        return []
    spaced = np.linspace(0, len(val_set) - 1, min(len(val_set), CANDIDATES * count))
    candidates = sorted(set(spaced.round().astype(int).tolist()))
    if len(candidates) <= count:
        return candidates
    chosen = []
    for group in np.array_split(np.array(candidates), count):
        classes = {int(index): _class_count(val_set, int(index)) for index in group}
        chosen.append(min(classes, key=lambda index: (-classes[index], index)))
    return chosen


def _class_count(val_set, index):
    mask = val_set[index][1].as_subclass(torch.Tensor)
    return torch.unique(mask[mask != val_set.ignore_index]).numel()


def prepare_snapshots(run_dir, val_set, count, step, split):
    """The record of the val images a run starting at `step` follows (see
    `ainnoseg.runs.snapshots.read_record`), or None with `count` 0. A new run
    (step 0) chooses and stores them, dropping any a previous start left; a
    resumed one reads them back and drops the predictions of evaluations after
    its checkpoint (one from before snapshots were kept chooses them now)."""
    restart(run_dir, step)
    record = read_record(run_dir) if step else None
    if record is None and count > 0:
        samples = []
        for index in choose_images(val_set, count):
            image, mask = val_set[index]
            samples.append((index, sample_name(val_set, index), to_uint8(image),
                            mask.as_subclass(torch.Tensor).to(torch.uint8).numpy()))
        record = record_images(run_dir, split, samples, val_set.class_names, val_set.palette)
    return record


def save_snapshot(model, val_set, record, run_dir, step, config):
    """Predict the recorded val images with `model` (in eval mode) as evaluation
    does at one scale, and store the label maps as those of evaluation `step`."""
    device = next(model.parameters()).device
    predictions = {}
    for index in record["indices"]:
        image = val_set[index][0].as_subclass(torch.Tensor).unsqueeze(0).to(device)
        labels = segment(model, image, mode=config.mode, crop_size=config.crop_size,
                         amp=config.amp)
        predictions[index] = labels[0].cpu().numpy()
    save_predictions(run_dir, step, predictions, record["palette"])
