"""Class weights for the loss, from the training set's label frequencies.

Thin and small classes (CamVid's Pole is under 1 % of the pixels) get little
gradient from a plain mean cross-entropy. CamVid's own baselines weight it:

- "median_frequency" (SegNet, after Eigen & Fergus, https://arxiv.org/abs/1411.4734):
  w_c = median(f) / f_c, with f_c the share of labelled pixels of class c.
- "enet" (ENet, https://arxiv.org/abs/1606.02147): w_c = 1 / ln(1.02 + f_c),
  bounded by about 50 however rare the class.

Classes with no pixels in the training set get weight 0: they cannot be learned
from it, and a weight would only make their logits drift.
"""

import math

import torch

METHODS = ("none", "median_frequency", "enet")


def class_pixel_counts(dataset):
    """Labelled pixels of each class over a dataset's masks: int64 (num_classes,).

    `dataset[i]` gives (image, mask); build it without training transforms, so
    crops and Mosaic do not change the counts.
    """
    counts = torch.zeros(dataset.num_classes, dtype=torch.int64)
    for index in range(len(dataset)):
        mask = torch.as_tensor(dataset[index][1]).flatten().long()
        valid = mask[mask < dataset.num_classes]
        counts += torch.bincount(valid, minlength=dataset.num_classes)
    return counts


def class_weights(counts, method):
    """float32 (num_classes,) loss weights from pixel counts, by `method` (see module doc)."""
    if method not in METHODS or method == "none":
        raise ValueError(f"class weighting {method!r} is not a method; choose one of "
                         f"{list(METHODS[1:])} (or none for a plain mean)")
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if counts.sum() <= 0:
        raise ValueError("the training set has no labelled pixels to weight classes by")
    frequency = counts / counts.sum()
    present = counts > 0
    weights = torch.zeros_like(frequency)
    if method == "median_frequency":
        weights[present] = frequency[present].median() / frequency[present]
    else:
        weights[present] = 1.0 / torch.log(1.02 + frequency[present])
    return weights.float()


def describe(weights, class_names):
    """{class name: weight, rounded}, for logs and run directories."""
    return {name: round(float(w), 4) for name, w in zip(class_names, weights)
            if math.isfinite(float(w))}
