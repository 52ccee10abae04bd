"""Segmentation metrics as pure functions.

Region metrics come from one confusion matrix accumulated over a dataset
(rows: ground truth, columns: prediction). Boundary metrics come from per-class
counts, also summed over the dataset before the ratio is taken.

Absent classes: a class that appears in neither the ground truth nor the
prediction of the whole evaluated set has IoU (and Boundary IoU, boundary
F-score) NaN and is left out of the means; a class that only the prediction
contains has IoU 0 and counts. Class accuracy is NaN for classes absent from
the ground truth. Pixels labelled `ignore_index` count nowhere.

    totals = empty_counts(num_classes)
    for pred, target in pairs:                  # (H, W) or batches (N, H, W)
        totals = [t + c for t, c in zip(totals, evaluation_counts(pred, target, num_classes))]
    summary(totals, class_names)                # {"mean_iou": ..., "class_iou": {...}, ...}
"""

import math

import torch
import torch.nn.functional as F

from .data import IGNORE_INDEX


def confusion_matrix(pred, target, num_classes, ignore_index=IGNORE_INDEX):
    """(num_classes, num_classes) int64 counts; [t, p] = pixels of class t predicted p."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} differs from target {tuple(target.shape)}")
    valid = target != ignore_index
    target, pred = target[valid].long(), pred[valid].long()
    if target.numel() and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(
            f"target holds labels outside 0..{num_classes - 1} (found {target.min()}..{target.max()}) "
            f"that are not the ignore index {ignore_index}")
    if pred.numel() and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f"prediction holds labels outside 0..{num_classes - 1}")
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes ** 2)
    return counts.reshape(num_classes, num_classes)


def _ratio(numerator, denominator):
    numerator, denominator = numerator.double(), denominator.double()
    return torch.where(denominator > 0, numerator / denominator.clamp(min=1), math.nan)


def pixel_accuracy(cm):
    """Share of labelled pixels predicted correctly."""
    return (cm.diag().sum().double() / cm.sum().clamp(min=1)).item()


def class_iou(cm):
    """Per-class IoU; NaN for classes in neither ground truth nor prediction."""
    intersection = cm.diag()
    union = cm.sum(0) + cm.sum(1) - intersection
    return _ratio(intersection, union)


def mean_iou(cm):
    return torch.nanmean(class_iou(cm)).item()


def class_accuracy(cm):
    """Per-class recall; NaN for classes absent from the ground truth."""
    return _ratio(cm.diag(), cm.sum(1))


def mean_class_accuracy(cm):
    return torch.nanmean(class_accuracy(cm)).item()


def score(cm):
    """The ADE20K challenge score: (pixel accuracy + mIoU) / 2."""
    return (pixel_accuracy(cm) + mean_iou(cm)) / 2


def _one_hot(labels, num_classes, valid):
    """(K, H, W) bool masks of each class, with invalid pixels in none."""
    classes = torch.arange(num_classes, device=labels.device).view(-1, 1, 1)
    return (labels.unsqueeze(0) == classes) & valid


def _erode(masks, radius):
    """Square erosion by `radius`; outside the image counts as background,
    as in the Boundary IoU reference code (cv2.erode on a zero-padded mask).
    The square is a row then a column: 2(2r + 1) comparisons a pixel, not (2r + 1)^2."""
    outside = F.pad((~masks).float().unsqueeze(1), (radius,) * 4, value=1.0)
    size = 2 * radius + 1
    rows = F.max_pool2d(outside, (1, size), stride=1)
    return F.max_pool2d(rows, (size, 1), stride=1).squeeze(1) == 0


def boundary_width(height, width):
    """The Boundary IoU band width of a height x width image in pixels: 2 % of
    its diagonal, at least 1 (Cheng et al. 2021, arXiv 2103.16562)."""
    return max(1, round(0.02 * math.hypot(height, width)))


def _check_pair(pred, target):
    if pred.ndim != 2 or pred.shape != target.shape:
        raise ValueError(
            f"boundary metrics take one (H, W) prediction and target, got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}")


def boundary_iou_counts(pred, target, num_classes, ignore_index=IGNORE_INDEX, width=None):
    """Boundary IoU counts of one image (Cheng et al. 2021, arXiv 2103.16562).

    For each class, its inner boundary band of width d is taken in the ground
    truth and in the prediction, d = `boundary_width` of the image.
    Pixels whose ground truth is `ignore_index` are removed from both masks.
    Returns (num_classes, 2) int64 [intersection, union]; sum over a dataset
    and pass to `boundary_iou`.
    """
    _check_pair(pred, target)
    if width is None:
        width = boundary_width(*target.shape)
    valid = target != ignore_index
    truth = _one_hot(target, num_classes, valid)
    predicted = _one_hot(pred, num_classes, valid)
    truth_band = truth & ~_erode(truth, width)
    predicted_band = predicted & ~_erode(predicted, width)
    intersection = (truth_band & predicted_band).flatten(1).sum(1)
    union = (truth_band | predicted_band).flatten(1).sum(1)
    return torch.stack([intersection, union], dim=1)


def boundary_iou(counts):
    """Per-class Boundary IoU from summed counts; NaN where both bands are empty."""
    return _ratio(counts[:, 0], counts[:, 1])


def _disk(radius, device):
    offsets = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    return (offsets.view(-1, 1) ** 2 + offsets.view(1, -1) ** 2 <= radius ** 2).float()


def _dilate_disk(masks, radius):
    kernel = _disk(radius, masks.device)[None, None]
    hits = F.conv2d(masks.float().unsqueeze(1), kernel, padding=radius)
    return hits.squeeze(1) > 0


def boundary_fscore_counts(pred, target, num_classes, ignore_index=IGNORE_INDEX, tolerance=None):
    """Boundary F-score counts of one image (DAVIS, Perazzi et al. 2016).

    A class's boundary is its 1-px inner contour; a predicted boundary pixel
    matches when a true one lies within `tolerance` px (a disk), default
    ceil(0.008 * image diagonal), and vice versa for recall.
    Returns (num_classes, 4) int64 [matched predicted, predicted, matched
    true, true] boundary pixels; sum over a dataset, pass to `boundary_fscore`.
    """
    _check_pair(pred, target)
    if tolerance is None:
        tolerance = max(1, math.ceil(0.008 * math.hypot(*target.shape)))
    valid = target != ignore_index
    truth = _one_hot(target, num_classes, valid)
    predicted = _one_hot(pred, num_classes, valid)
    truth_edge = truth & ~_erode(truth, 1)
    predicted_edge = predicted & ~_erode(predicted, 1)
    matched_predicted = predicted_edge & _dilate_disk(truth_edge, tolerance)
    matched_truth = truth_edge & _dilate_disk(predicted_edge, tolerance)
    counts = [matched_predicted, predicted_edge, matched_truth, truth_edge]
    return torch.stack([c.flatten(1).sum(1) for c in counts], dim=1)


def boundary_fscore(counts):
    """Per-class boundary F-score from summed counts; NaN where no class boundary exists."""
    precision = _ratio(counts[:, 0], counts[:, 1])
    recall = _ratio(counts[:, 2], counts[:, 3])
    precision = torch.nan_to_num(precision, nan=0.0)
    recall = torch.nan_to_num(recall, nan=0.0)
    fscore = _ratio(2 * precision * recall, precision + recall)
    fscore = torch.nan_to_num(fscore, nan=0.0)
    absent = (counts[:, 1] + counts[:, 3]) == 0
    return torch.where(absent, math.nan, fscore)


def empty_counts(num_classes, device=None):
    """Zero totals of `evaluation_counts`, to sum a dataset's counts into."""
    shapes = ((num_classes, num_classes), (num_classes, 2), (num_classes, 4))
    return [torch.zeros(shape, dtype=torch.int64, device=device) for shape in shapes]


def evaluation_counts(pred, target, num_classes, ignore_index=IGNORE_INDEX):
    """The counts an evaluation sums over a dataset, of one (H, W) prediction
    or a batch (N, H, W): [confusion matrix (K, K), Boundary IoU counts (K, 2),
    boundary F-score counts (K, 4)]. Pass their sums to `summary`."""
    pairs = zip(pred, target) if pred.ndim == 3 else [(pred, target)]
    biou, bf = 0, 0
    for one_pred, one_target in pairs:
        biou = biou + boundary_iou_counts(one_pred, one_target, num_classes, ignore_index)
        bf = bf + boundary_fscore_counts(one_pred, one_target, num_classes, ignore_index)
    return [confusion_matrix(pred, target, num_classes, ignore_index), biou, bf]


def summary(counts, class_names):
    """The region and boundary metrics of summed `evaluation_counts`, as plain
    Python numbers: "pixel_accuracy", "mean_iou", "mean_class_accuracy",
    "score", "boundary_iou", "boundary_fscore" (means over the classes
    present), and per class ({class name: value}, NaN where absent)
    "class_iou", "class_accuracy", "class_boundary_iou", "class_boundary_fscore".
    """
    cm, biou_counts, bf_counts = (c.cpu() for c in counts)
    class_biou, class_bf = boundary_iou(biou_counts), boundary_fscore(bf_counts)

    def per_class(values):
        return {name: float(v) for name, v in zip(class_names, values.tolist())}

    return {
        "pixel_accuracy": pixel_accuracy(cm),
        "mean_iou": mean_iou(cm),
        "mean_class_accuracy": mean_class_accuracy(cm),
        "score": score(cm),
        "boundary_iou": torch.nanmean(class_biou).item(),
        "boundary_fscore": torch.nanmean(class_bf).item(),
        "class_iou": per_class(class_iou(cm)),
        "class_accuracy": per_class(class_accuracy(cm)),
        "class_boundary_iou": per_class(class_biou),
        "class_boundary_fscore": per_class(class_bf),
    }
