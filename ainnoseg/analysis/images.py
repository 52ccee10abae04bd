"""Per-image evaluation: the metrics of one prediction, a worst-images table
for a split, checkpoints to choose from, and a model's confidence map.

    model = ainnoseg.load("camvid/ainnoseg_w18s")
    dataset = ainnoseg.data.build_dataset("synthetic", "val")
    rows = score_images(model, dataset, indices=range(20))
    table = worst_images({"AinnoSeg": rows})          # worst mIoU first

Scores are fractions in [0, 1], None where a metric is undefined (an image
whose pixels are all ignored). The dashboard's Predictions page shows these;
notebooks can call them the same way.
"""

import math
from pathlib import Path

import numpy as np
import torch

from .. import metrics
from ..data import IGNORE_INDEX, DataError, sample_name
from ..inference.multiscale import segment_image
from ..viz import label_boundaries

METRICS = ("mean_iou", "boundary_iou", "pixel_accuracy")
TABLE_NAMES = {"mean_iou": "mIoU", "boundary_iou": "Boundary IoU",
               "pixel_accuracy": "pixel acc.", "boundary_fscore": "boundary F",
               "boundary_errors": "errors near a boundary",
               "interior_errors": "errors inside regions"}
# The scores of `image_metrics` that `ainnoseg.metrics.summary` gives.
SUMMARY_SCORES = ("mean_iou", "boundary_iou", "boundary_fscore", "pixel_accuracy")


def _tensor(labels):
    if isinstance(labels, np.ndarray):
        labels = torch.from_numpy(labels)
    return labels.as_subclass(torch.Tensor).long()


def _finite(value):
    return None if value is None or math.isnan(value) else float(value)


def boundary_band(target):
    """Bool (H, W): the pixels within the Boundary IoU band
    (`ainnoseg.metrics.boundary_width`) of a ground-truth boundary, where an
    error counts as a boundary error."""
    target = np.asarray(target)
    return label_boundaries(target, metrics.boundary_width(*target.shape))


def image_metrics(pred, target, num_classes, ignore_index=IGNORE_INDEX):
    """Region and boundary scores of one (H, W) prediction against its ground truth.

    Returns a dict: "mean_iou", "boundary_iou" and "boundary_fscore" (means
    over the classes in the image's ground truth or prediction, as
    `ainnoseg.metrics.summary` takes them), "pixel_accuracy", and
    "boundary_errors" / "interior_errors": the shares of labelled pixels
    wrong within the `boundary_band` of a ground-truth boundary, and away
    from it (the orange and red of `ainnoseg.viz.error_map`).
    """
    pred, target = _tensor(pred), _tensor(target)
    if pred.shape != target.shape:
        raise ValueError(f"the prediction is {tuple(pred.shape)} but the ground truth is "
                         f"{tuple(target.shape)}; predict at the image's size")
    counts = metrics.evaluation_counts(pred, target, num_classes, ignore_index)
    labelled = int(counts[0].sum())
    if labelled == 0:
        return {key: None for key in (*SUMMARY_SCORES, "boundary_errors", "interior_errors")}
    summary = metrics.summary(counts, class_names=range(num_classes))
    near = torch.from_numpy(boundary_band(target.numpy()))
    wrong = (pred != target) & (target != ignore_index)
    return {
        **{key: _finite(summary[key]) for key in SUMMARY_SCORES},
        "boundary_errors": int((wrong & near).sum()) / labelled,
        "interior_errors": int((wrong & ~near).sum()) / labelled,
    }


def load_sample(dataset, index):
    """(uint8 image (H, W, 3), (H, W) uint8 mask or None) of a dataset built
    without transforms; the mask is None for unlabeled images."""
    sample = dataset[index]
    image, mask = sample if isinstance(sample, (tuple, list)) else (sample, None)
    image = image.as_subclass(torch.Tensor).permute(1, 2, 0).numpy()
    if mask is not None:
        mask = mask.as_subclass(torch.Tensor).to(torch.uint8).numpy()
    return image, mask


def score_images(model, dataset, indices=None, scales=(1.0,), flip=False, on_image=None):
    """`image_metrics` of `model` on each image of a labelled dataset.

    Args:
        model: a model from `ainnoseg.load` (eval mode).
        dataset: a labelled dataset built without transforms.
        indices: the samples to score (default all).
        scales, flip: test-time augmentation, as in `segment_image`.
        on_image: called as on_image(done, total) after each image (a progress bar).
    Returns one dict per image, in `indices` order: "index", "name" and the
    keys of `image_metrics`. Raises `ainnoseg.data.DataError` naming the
    first image that cannot be read or segmented.
    """
    rows = []
    for index, pred, mask in labelled_predictions(model, dataset, indices, scales, flip,
                                                  on_image, "the worst-images table"):
        scores = image_metrics(pred, mask, dataset.num_classes, dataset.ignore_index)
        rows.append({"index": index, "name": sample_name(dataset, index), **scores})
    return rows


def labelled_predictions(model, dataset, indices=None, scales=(1.0,), flip=False,
                         on_image=None, purpose="this", probabilities=False):
    """(index, prediction, labels) of each image `indices` names in a labelled
    dataset (built without transforms), segmented by `model` with `scales`
    and `flip`; `on_image(done, total)` is called after each is used. With
    `probabilities`, the prediction is the (K, H, W) float32 class
    probabilities instead of the class indices.
    ValueError (saying `purpose` needs ground truth) for a dataset without
    labels; `ainnoseg.data.DataError` naming the first image that cannot be
    read or segmented."""
    if not hasattr(dataset, "num_classes"):
        raise ValueError(f"{purpose} needs ground truth; choose a split with labels")
    indices = list(range(len(dataset)) if indices is None else indices)
    return _predictions(model, dataset, indices, scales, flip, on_image, probabilities)


def _predictions(model, dataset, indices, scales, flip, on_image, probabilities):
    for done, index in enumerate(indices, 1):
        image, mask = load_sample(dataset, index)
        try:
            pred = segment_image(model, image, scales=scales, flip=flip,
                                 probabilities=probabilities)
            pred = pred[1] if probabilities else pred
        except DataError as error:  # too small for the network: say which image
            raise DataError(f"{sample_name(dataset, index)}: {error}") from None
        yield index, pred, mask
        if on_image is not None:
            on_image(done, len(indices))


def worst_images(scores, by=None, metrics=METRICS):
    """One table of per-image scores of several checkpoints, worst first.

    Args:
        scores: {checkpoint label: rows of `score_images`}, all of the same images.
        by: the label whose mIoU sorts the table (default the first).
        metrics: the `METRICS` to show ("mean_iou" among them: it sorts).
    Returns rows {"index", "name", then for each metric its column per label
    side by side ("mIoU <label>", ..., and after the mIoUs, with two or more
    checkpoints, "mIoU gain": last minus first), "Boundary IoU <label>", ...},
    sorted by ascending mIoU of `by`, images without a score last.
    """
    labels = list(scores)
    if not labels:
        return []
    by = labels[0] if by is None else by
    merged = {}
    for label in labels:
        for row in scores[label]:
            entry = merged.setdefault(row["index"], {"index": row["index"], "name": row["name"]})
            for key in metrics:
                entry[f"{TABLE_NAMES[key]} {label}"] = row[key]
    columns = ["index", "name"]
    for key in metrics:
        columns += [f"{TABLE_NAMES[key]} {label}" for label in labels]
        if key == "mean_iou" and len(labels) > 1:
            columns.append("mIoU gain")
            first, last = f"mIoU {labels[0]}", f"mIoU {labels[-1]}"
            for entry in merged.values():
                both = entry.get(first) is not None and entry.get(last) is not None
                entry["mIoU gain"] = entry[last] - entry[first] if both else None
    key = f"mIoU {by}"
    ordered = sorted(merged.values(), key=lambda entry: (
        entry.get(key) is None, entry.get(key) or 0.0, entry["index"]))
    return [{column: entry.get(column) for column in columns} for entry in ordered]


def find_checkpoints(root):
    """Checkpoint files (*.pt) under a runs folder, newest first.

    Returns dicts {"label": path relative to `root`, "path", "modified"
    (epoch seconds)}; an empty list when the folder does not exist.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(path.stat().st_mtime, path) for path in root.rglob("*.pt") if path.is_file()]
    return [{"label": str(path.relative_to(root)), "path": path, "modified": modified}
            for modified, path in sorted(found, key=lambda item: (-item[0], str(item[1])))]


def confidence_map(model, image, scales=(1.0,), flip=False):
    """(labels, confidence): the (H, W) class indices and the (H, W) float
    highest class probability of `model` on `image`, the confidence a
    pseudo-label threshold is compared against."""
    labels, probabilities = segment_image(model, image, scales=scales, flip=flip,
                                          probabilities=True)
    return labels.numpy(), probabilities.max(0).values.numpy()


def confidence_picture(confidence, threshold=0.0):
    """A (H, W) confidence map as a uint8 (H, W, 3) picture: grey levels
    (white = 1), tinted red where it falls below `threshold` (the pixels a
    pseudo-label ignores)."""
    grey = np.clip(np.round(np.asarray(confidence, np.float32) * 255), 0, 255).astype(np.uint8)
    picture = np.repeat(grey[..., None], 3, axis=-1)
    below = np.asarray(confidence) < threshold
    picture[below, 0] = 128 + grey[below] // 2
    picture[below, 1:] = grey[below, None] // 2
    return picture
