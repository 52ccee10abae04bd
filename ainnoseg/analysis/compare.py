"""Several models on one image, compared: predictions with their boundaries,
where the models disagree, each model's scores against a ground truth and
their ranking, and what multi-scale + flip testing changes.

    predictions = run_models({"HRNet": hrnet, "AinnoSeg": ainnoseg}, image)
    picture = prediction_picture(image, predictions[0].labels, palette)
    counts = distinct_labels([p.labels for p in predictions])    # 1 where all agree
    rows = rank(score_predictions(predictions, mask, num_classes=11))

This is the paper's Figure 7 claim ("neither HRNet nor DANet can
effectively segment the object boundary pixels and little objects") made
checkable on any image. Scores are fractions in [0, 1], None where undefined.
"""

import time
from dataclasses import dataclass

import numpy as np

from .. import viz
from ..data import IGNORE_INDEX
from ..inference.multiscale import segment_image
from .images import boundary_band, image_metrics

BOUNDARY_COLOR = (255, 255, 255)  # class boundaries drawn over an overlay
OUTLINE_COLOR = (255, 230, 0)     # boundaries alone, over the bare image
# Where the models disagree; distinct from `viz.ERROR_COLORS` (orange, red).
DISAGREEMENT_COLORS = {"all agree": (70, 70, 70), "two labels": (0, 200, 255),
                       "three or more labels": (255, 0, 255)}
SCORE_NAMES = {"mean_iou": "mIoU", "pixel_accuracy": "pixel acc.",
               "boundary_iou": "Boundary IoU", "boundary_fscore": "boundary F"}


@dataclass
class Prediction:
    """One model's result on one image: `labels` (H, W) int64 class indices,
    `seconds` of inference, the model's `parameters` and `model_name`."""

    name: str
    labels: np.ndarray
    seconds: float
    parameters: int
    model_name: str


def parameter_count(model):
    return sum(parameter.numel() for parameter in model.parameters())


def largest_stride(models):
    """The coarsest output stride among `models` (1 for models without one)."""
    return max((getattr(model, "stride", 1) for model in models), default=1)


def run_models(models, image, scales=(1.0,), flip=False):
    """Each of `models` ({column name: model}) on `image` (uint8 (H, W, 3)),
    timed; a list of `Prediction` in the dict's order."""
    predictions = []
    for name, model in models.items():
        start = time.perf_counter()
        labels = segment_image(model, image, scales=scales, flip=flip)
        meta = getattr(model, "meta", None)
        predictions.append(Prediction(name, labels.numpy(), time.perf_counter() - start,
                                      parameter_count(model), meta.name if meta else name))
    return predictions


def prediction_picture(image, labels, palette, opacity=0.5, boundaries_only=False):
    """The prediction over the image with its class boundaries drawn (white),
    or with `boundaries_only` the bare image with the boundaries in yellow."""
    if boundaries_only:
        return viz.draw_boundaries(image, labels, OUTLINE_COLOR)
    return viz.draw_boundaries(viz.overlay(image, labels, palette, opacity), labels,
                               BOUNDARY_COLOR)


def distinct_labels(label_maps):
    """(H, W) int64: how many different labels the maps give each pixel (1 = all agree)."""
    stacked = np.sort(np.stack([np.asarray(labels) for labels in label_maps]), axis=0)
    return 1 + (np.diff(stacked, axis=0) != 0).sum(axis=0)


def disagreement_picture(image, counts):
    """The image in dim grey, with pixels where two models' labels differ in
    cyan and where three or more labels meet in magenta (`DISAGREEMENT_COLORS`)."""
    grey = np.asarray(image, np.float32).mean(axis=-1, keepdims=True)
    picture = np.repeat(np.round(0.2 * 255 + 0.45 * grey), 3, axis=-1).astype(np.uint8)
    picture[counts == 2] = DISAGREEMENT_COLORS["two labels"]
    picture[counts >= 3] = DISAGREEMENT_COLORS["three or more labels"]
    return picture


def disagreement_summary(counts, target=None, ignore_index=IGNORE_INDEX):
    """Shares of pixels where the models disagree: "any", "two", "three or more";
    with a ground truth also "near_boundary" (of the disagreeing labelled
    pixels, the share within `boundary_band`) and "band" (the band's share of
    labelled pixels), None when no labelled pixel disagrees."""
    summary = {"any": float((counts > 1).mean()), "two": float((counts == 2).mean()),
               "three or more": float((counts >= 3).mean())}
    if target is not None:
        labelled = np.asarray(target) != ignore_index
        near = boundary_band(target) & labelled
        disagree = (counts > 1) & labelled
        summary["near_boundary"] = (float((disagree & near).sum() / disagree.sum())
                                    if disagree.any() else None)
        summary["band"] = float(near.sum() / max(1, labelled.sum()))
    return summary


def score_predictions(predictions, target, num_classes, ignore_index=IGNORE_INDEX):
    """One row per prediction: "name", "model", "seconds" and `image_metrics`."""
    return [{"name": p.name, "model": p.model_name, "seconds": p.seconds,
             **image_metrics(p.labels, target, num_classes, ignore_index)}
            for p in predictions]


def rank(rows):
    """`rows` best first (mIoU, then Boundary IoU; unscored last), each with its "rank"."""
    def key(row):
        return (row["mean_iou"] is None, -(row["mean_iou"] or 0.0),
                -(row["boundary_iou"] or 0.0))
    return [{"rank": place, **row} for place, row in enumerate(sorted(rows, key=key), 1)]


def _percent(value):
    return "-" if value is None else round(100 * value, 1)


def ranking_table(ranked):
    """(headers, rows) of ranked rows for a table, scores in %."""
    keys = ("mean_iou", "pixel_accuracy", "boundary_iou", "boundary_fscore",
            "boundary_errors", "interior_errors")
    headers = ["rank", "model", "mIoU %", "pixel acc. %", "Boundary IoU %", "boundary F %",
               "boundary errors %", "interior errors %"]
    rows = [[row["rank"], row["name"], *(_percent(row[key]) for key in keys)] for row in ranked]
    return headers, rows


def scale_change(single, multi, class_names, target=None, ignore_index=IGNORE_INDEX, top=3):
    """What multi-scale testing changed in one model's prediction.

    Returns {"changed": share of pixels whose label changed, "transitions":
    the `top` most frequent [(from class, to class, share of pixels)]}, and
    with a ground truth "single" and "multi": their `image_metrics`.
    """
    single, multi = np.asarray(single).astype(np.int64), np.asarray(multi).astype(np.int64)
    classes = len(class_names)
    moved = single != multi
    pairs = np.bincount((single[moved] * classes + multi[moved]).ravel(),
                        minlength=classes * classes)
    order = [index for index in np.argsort(-pairs, kind="stable")[:top] if pairs[index] > 0]
    change = {"changed": float(moved.mean()),
              "transitions": [(class_names[i // classes], class_names[i % classes],
                               float(pairs[i] / single.size)) for i in order]}
    if target is not None:
        change["single"] = image_metrics(single, target, classes, ignore_index)
        change["multi"] = image_metrics(multi, target, classes, ignore_index)
    return change
