"""Where a model's pixels go: the confusion matrix of a labelled split, over
all pixels and over boundary pixels only (those within the Boundary IoU band
of a ground-truth boundary, where the paper places the errors its method
fixes), and its largest confusions in words.

    counts = confusion.on_dataset(model, dataset, indices=range(20))
    confusion.normalised(counts["all"])      # row c: where class c's pixels went
    confusion.largest(counts["boundary"], dataset.class_names)
    # [{"true": "Pole", "predicted": "Building", "share": 0.41, "pixels": 5123,
    #   "text": "Pole -> Building: 41 % of Pole pixels"}, ...]
    confusion.write_csv(counts, dataset.class_names, "confusion.csv")   # or csv_text(...)
"""

import csv
import io
from pathlib import Path

import numpy as np

from ..files import atomic_write
from .images import boundary_band, labelled_predictions

PARTS = ("all", "boundary")  # every labelled pixel; those in the Boundary IoU band


def counts_of(pred, target, num_classes, ignore_index):
    """{"all", "boundary"}: (K, K) int64 pixel counts of one prediction, row =
    true class, column = predicted class; ignored pixels are not counted."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and labels {target.shape} differ in size")
    labelled = (target != ignore_index) & (target < num_classes)
    band = boundary_band(target) & labelled
    return {"all": _matrix(pred[labelled], target[labelled], num_classes),
            "boundary": _matrix(pred[band], target[band], num_classes)}


def _matrix(pred, target, num_classes):
    pred = np.clip(pred.astype(np.int64), 0, num_classes - 1)
    flat = target.astype(np.int64) * num_classes + pred
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes,
                                                                         num_classes)


def on_dataset(model, dataset, indices=None, scales=(1.0,), flip=False, on_image=None):
    """The summed `counts_of` of `model` over the images of a labelled dataset
    (built without transforms): {"all", "boundary", "images"}.

    Args:
        indices: the samples to count (default all).
        scales, flip: test-time augmentation, as in `segment_image`.
        on_image: called as on_image(done, total) after each image (a progress bar).
    Raises `ainnoseg.data.DataError` naming the first image that cannot be
    read or segmented.
    """
    predictions = labelled_predictions(model, dataset, indices, scales, flip, on_image,
                                       "a confusion matrix")
    total = {part: np.zeros((dataset.num_classes,) * 2, np.int64) for part in PARTS}
    images = 0
    for _, pred, mask in predictions:
        images += 1
        for part, counts in counts_of(pred, mask, dataset.num_classes,
                                      dataset.ignore_index).items():
            total[part] += counts
    return {**total, "images": images}


def normalised(counts):
    """Each row of `counts` divided by its sum: the share of a true class's
    pixels given to each class (a row without pixels stays 0)."""
    counts = np.asarray(counts, np.float64)
    sums = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)


def largest(counts, class_names, top=5):
    """The `top` largest off-diagonal shares of `normalised(counts)`, largest
    first: {"true", "predicted", "share", "pixels", "text"}."""
    counts = np.asarray(counts)
    shares = normalised(counts)
    np.fill_diagonal(shares, 0.0)
    order = np.argsort(shares, axis=None)[::-1]
    rows = []
    for flat in order[:top]:
        true, predicted = np.unravel_index(flat, shares.shape)
        if shares[true, predicted] <= 0:
            break
        name, other = class_names[true], class_names[predicted]
        share = float(shares[true, predicted])
        rows.append({"true": name, "predicted": other, "share": share,
                     "pixels": int(counts[true, predicted]),
                     "text": f"{name} -> {other}: {100 * share:.0f} % of {name} pixels"})
    return rows


def table_rows(counts, class_names, part="all"):
    """Long-form rows of one matrix for a heatmap or a CSV: {"part", "true",
    "predicted", "pixels", "share"} (share: of the true class's pixels)."""
    counts = np.asarray(counts)
    shares = normalised(counts)
    return [{"part": part, "true": class_names[t], "predicted": class_names[p],
             "pixels": int(counts[t, p]), "share": float(shares[t, p])}
            for t in range(len(class_names)) for p in range(len(class_names))]


def csv_text(counts, class_names):
    """Both matrices of `on_dataset` as one long-form CSV (see `table_rows`)."""
    rows = [row for part in PARTS for row in table_rows(counts[part], class_names, part)]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def write_csv(counts, class_names, path):
    """`csv_text` written at `path` (its folder made), atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = csv_text(counts, class_names)
    atomic_write(path, lambda handle: handle.write(text.encode()))
    return path
