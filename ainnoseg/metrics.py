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


def _sliding_max(x, size, dim):
    """The maximum of each window of `size` along `dim` (which shrinks by
    size - 1), by doubling the window: about log2(size) elementwise maxima."""
    span = 1
    while span < size:
        step = min(span, size - span)
        length = x.shape[dim] - step
        x = torch.maximum(x.narrow(dim, 0, length), x.narrow(dim, step, length))
        span += step
    return x


def _labels_or_none(labels, valid, num_classes):
    """`labels` with -1 (no class) where not `valid` or outside 0..num_classes-1."""
    labels = labels.long()
    inside = valid & (labels >= 0) & (labels < num_classes)
    return torch.where(inside, labels, -1)


def _inner_band(labels, width):
    """(H, W) bool: the pixels of every class's inner boundary band, for a
    label map with -1 where no class is. A pixel of class k lies inside its
    class's mask eroded by a (2 width + 1) square, the Boundary IoU reference's
    cv2.erode on a zero-padded mask, only when every pixel of that square is
    k; so one window maximum and minimum of the label map, with the outside
    as no class, give every class's band at once."""
    padded = F.pad(labels, (width,) * 4, value=-1)
    size = 2 * width + 1
    highest = _sliding_max(_sliding_max(padded, size, -1), size, -2)
    lowest = -_sliding_max(_sliding_max(-padded, size, -1), size, -2)
    return (labels >= 0) & (highest != lowest)


def _per_class(labels, band, num_classes):
    """(num_classes, H, W) bool: the band's pixels of each class."""
    classes = torch.arange(num_classes, device=labels.device).view(-1, 1, 1)
    return (labels == classes) & band


def _dilate_disk(masks, radius):
    """(K, H, W) bool masks dilated by a disk of `radius`: the union, over
    its rows dy, of the masks' maxima over each row's width shifted by dy."""
    height, width = masks.shape[-2:]
    padded = F.pad(masks.to(torch.uint8), (radius,) * 4)  # uint8: maxima and padding on any device
    row_maxima = {}
    dilated = torch.zeros_like(masks)
    for dy in range(-radius, radius + 1):
        half = math.isqrt(radius * radius - dy * dy)
        if half not in row_maxima:  # width shrinks by 2 half
            row_maxima[half] = _sliding_max(padded, 2 * half + 1, -1)
        dilated |= row_maxima[half][..., radius + dy:radius + dy + height,
                                    radius - half:radius - half + width].bool()
    return dilated


def _class_counts(labels, where, num_classes):
    return torch.bincount(labels[where], minlength=num_classes)


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
    truth = _labels_or_none(target, valid, num_classes)
    predicted = _labels_or_none(pred, valid, num_classes)
    truth_band, predicted_band = _inner_band(truth, width), _inner_band(predicted, width)
    both = truth_band & predicted_band & (truth == predicted)
    intersection = _class_counts(truth, both, num_classes)
    union = (_class_counts(truth, truth_band, num_classes)
             + _class_counts(predicted, predicted_band, num_classes) - intersection)
    return torch.stack([intersection, union], dim=1)


def boundary_iou(counts):
    """Per-class Boundary IoU from summed counts; NaN where both bands are empty."""
    return _ratio(counts[:, 0], counts[:, 1])


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
    truth = _labels_or_none(target, valid, num_classes)
    predicted = _labels_or_none(pred, valid, num_classes)
    truth_edge, predicted_edge = _inner_band(truth, 1), _inner_band(predicted, 1)
    near_truth = _dilate_disk(_per_class(truth, truth_edge, num_classes), tolerance)
    near_predicted = _dilate_disk(_per_class(predicted, predicted_edge, num_classes), tolerance)
    # an edge pixel of class k matches where class k's other edge is near it
    matched_predicted = predicted_edge & near_truth.gather(0, predicted.clamp(min=0)[None])[0]
    matched_truth = truth_edge & near_predicted.gather(0, truth.clamp(min=0)[None])[0]
    counts = [_class_counts(predicted, matched_predicted, num_classes),
              _class_counts(predicted, predicted_edge, num_classes),
              _class_counts(truth, matched_truth, num_classes),
              _class_counts(truth, truth_edge, num_classes)]
    return torch.stack(counts, dim=1)


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
