"""Losses: a weighted sum of per-output pixel criteria, all with an ignore index.

AinnoSeg's Eq. (1) is `0.1 * L_da + 0.3 * L_ocr + 1.0 * L_final`; each model
carries its own paper's weights in `model.loss_weights`. The pixel criterion is
plain cross-entropy by default, or one of the boundary-aware options below.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .data import IGNORE_INDEX


def cross_entropy(logits, target, ignore_index=IGNORE_INDEX, class_weight=None):
    """Mean cross-entropy over pixels whose label is not `ignore_index`
    (zero when every pixel is ignored, e.g. an unsure pseudo-label); with
    `class_weight` (K,), the mean weighted by each pixel's class weight."""
    valid = target != ignore_index
    if not valid.any() or (class_weight is not None and
                           class_weight[target[valid].long()].sum() == 0):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), target, weight=class_weight,
                           ignore_index=ignore_index)


def boundary_mask(target, width):
    """Pixels within `width` px (chessboard distance) of a label change.

    A change to or from ignored pixels counts as a boundary too.
    """
    labels = target.unsqueeze(1).float()
    window = 2 * width + 1
    highest = F.max_pool2d(labels, window, stride=1, padding=width)
    lowest = -F.max_pool2d(-labels, window, stride=1, padding=width)
    return (highest != lowest).squeeze(1)


def boundary_weighted_cross_entropy(logits, target, ignore_index=IGNORE_INDEX, width=3, weight=5.0,
                                    class_weight=None):
    """Cross-entropy with pixels near a label boundary weighted `weight` times
    (and each pixel by its class's `class_weight`, if given).

    The answer to the paper's loss that "takes into account the boundary pixels
    of multiple objects": a weighted mean, so the loss keeps its scale.
    """
    pixel_losses = F.cross_entropy(logits.float(), target, ignore_index=ignore_index,
                                   reduction="none")
    weights = 1.0 + (weight - 1.0) * boundary_mask(target, width).float()
    weights = weights * (target != ignore_index)
    if class_weight is not None:
        weights = weights * class_weight[target.clamp(max=len(class_weight) - 1).long()]
    return (pixel_losses * weights).sum() / weights.sum().clamp(min=1.0)


def ohem_cross_entropy(logits, target, ignore_index=IGNORE_INDEX, threshold=0.9, min_kept=131072,
                       class_weight=None):
    """Online hard example mining as in HRNet-OCR's `OhemCrossEntropy`.

    Keeps the pixels whose probability of the true class is below
    `threshold`, or below the (min_kept + 1)-th smallest probability when
    that is higher, so that about `min_kept` hardest pixels always count.
    With `class_weight`, the kept pixels' mean is weighted by their class's weight.
    """
    pixel_losses = F.cross_entropy(logits.float(), target, ignore_index=ignore_index,
                                   reduction="none").flatten()
    valid = (target != ignore_index).flatten()
    if not valid.any():
        return pixel_losses.sum() * 0.0
    pixel_losses = pixel_losses[valid]
    labels = target.flatten()[valid].long()
    true_class_prob = torch.exp(-pixel_losses.detach())
    kth = min(min_kept, true_class_prob.numel() - 1)
    kth_prob = torch.kthvalue(true_class_prob, kth + 1).values
    keep = true_class_prob < torch.clamp(kth_prob, min=threshold)
    keep |= true_class_prob == true_class_prob.min()  # never an empty mean
    if class_weight is None:
        return pixel_losses[keep].mean()
    weights = class_weight[labels[keep]]
    return (pixel_losses[keep] * weights).sum() / weights.sum().clamp(min=1e-12)


CRITERIA = {
    "ce": cross_entropy,
    "boundary_ce": boundary_weighted_cross_entropy,
    "ohem": ohem_cross_entropy,
}


class SegmentationLoss(nn.Module):
    """Weighted sum of a pixel criterion over a model's outputs.

    Args:
        weights: output name -> weight, e.g. {"out": 1.0, "ocr": 0.3, "da": 0.1}.
            Outputs missing from the model's dict are an error; weight 0 skips one.
        criterion: "ce", "boundary_ce" or "ohem".
        ignore_index: label that contributes nothing.
        class_weight: optional (K,) weight of each class's pixels (see
            `ainnoseg.data.class_weights`); None weights every pixel alike.
        **criterion_options: e.g. width=3, weight=5.0 for "boundary_ce".
    Returns from forward:
        (total loss, {output name: its unweighted loss}, detached for logging).
    """

    def __init__(self, weights, criterion="ce", ignore_index=IGNORE_INDEX, class_weight=None,
                 **criterion_options):
        super().__init__()
        if criterion not in CRITERIA:
            raise ValueError(f"unknown loss criterion {criterion!r}; choose one of {sorted(CRITERIA)}")
        self.weights = dict(weights)
        self.criterion = CRITERIA[criterion]
        self.ignore_index = ignore_index
        self.criterion_options = criterion_options
        self.register_buffer("class_weight", None if class_weight is None
                             else torch.as_tensor(class_weight, dtype=torch.float32))

    def forward(self, outputs, target):
        missing = sorted(set(self.weights) - set(outputs))
        if missing:
            raise KeyError(
                f"the loss needs outputs {missing} but the model returned {sorted(outputs)}; "
                "build the loss for this model: build_loss(model)")
        total, terms = 0.0, {}
        for name, weight in self.weights.items():
            if weight == 0:
                continue
            logits = outputs[name]
            if logits.shape[-2:] != target.shape[-2:]:
                logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear",
                                       align_corners=False)
            term = self.criterion(logits, target, ignore_index=self.ignore_index,
                                  class_weight=self.class_weight, **self.criterion_options)
            terms[name] = term.detach()
            total = total + weight * term
        return total, terms


def build_loss(model, criterion="ce", weights=None, ignore_index=IGNORE_INDEX, class_weight=None,
               **criterion_options):
    """The loss of `model`'s paper (`model.loss_weights`), optionally reweighted.

    Args:
        model: a `Segmentor` from `build_model`.
        criterion: "ce" (default), "boundary_ce" or "ohem".
        weights: replaces the paper's weights, e.g. {"out": 1, "ocr": 0.4, "da": 0}.
        class_weight: optional (K,) per-class pixel weights.
    """
    weights = model.loss_weights if weights is None else weights
    unknown = sorted(set(weights) - set(model.loss_weights))
    if unknown:
        raise ValueError(
            f"loss weights name outputs {unknown} that this model does not have; "
            f"its outputs are {sorted(model.loss_weights)}")
    if any(not math.isfinite(w) or w < 0 for w in weights.values()):
        raise ValueError(f"loss weights must be finite and non-negative, got {weights}")
    return SegmentationLoss(weights, criterion, ignore_index, class_weight, **criterion_options)
