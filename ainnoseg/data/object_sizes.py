"""Object sizes in label masks: why Mosaic helps small objects, in numbers.

An object is a connected region of one class (8-connected) in a mask; its
size is its pixel count. Mosaic stitches four samples on a canvas twice their
size and scales it back by half, so every object shrinks to a quarter of its
area: a batch with Mosaic samples holds more small objects.

    masks = [mask for _, mask in samples]                 # (H, W) arrays, 255 ignored
    sizes = object_sizes(masks, classes=[POLE, SIGN, PERSON])
    counts, edges = size_histogram(sizes)                 # log-spaced bins
"""

import numpy as np
import torch

from .io import IGNORE_INDEX


def _array(mask):
    if isinstance(mask, torch.Tensor):
        mask = mask.as_subclass(torch.Tensor).cpu().numpy()
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be (H, W), got shape {mask.shape}")
    return mask


def object_sizes(masks, classes=None, ignore_index=IGNORE_INDEX):
    """Pixel counts of every object (8-connected region of one class) in `masks`.

    Args:
        masks: (H, W) label arrays or tensors.
        classes: the class ids to count (default every class present but the
            ignore index).
    Returns a dict {class id: int64 array of object sizes}, one entry per
    counted class (an empty array where it has no object).
    """
    from scipy import ndimage  # the well-kept connected-component labelling

    eight = np.ones((3, 3), dtype=bool)
    masks = [_array(mask) for mask in masks]
    if classes is None:
        present = set().union(*(np.unique(mask).tolist() for mask in masks)) if masks else set()
        classes = sorted(present - {ignore_index})
    sizes = {int(cls): [] for cls in classes}
    for mask in masks:
        for cls in sizes:
            regions, count = ndimage.label(mask == cls, structure=eight)
            if count:
                sizes[cls].append(np.bincount(regions.ravel())[1:])
    return {cls: np.concatenate(found) if found else np.zeros(0, np.int64)
            for cls, found in sizes.items()}


def size_histogram(sizes, bins=12, largest=None):
    """(counts, edges) of object sizes on log-spaced bins from 1 pixel.

    Args:
        sizes: an array of sizes, or the dict `object_sizes` returns (merged).
        bins: number of bins.
        largest: the top edge (default the largest size, at least 2), so that
            two histograms compared side by side can share their edges.
    """
    if isinstance(sizes, dict):
        sizes = np.concatenate([np.asarray(v) for v in sizes.values()] or [np.zeros(0)])
    sizes = np.asarray(sizes)
    top = max(2, int(largest if largest is not None else (sizes.max() if sizes.size else 2)))
    edges = np.logspace(0, np.log10(top + 1), bins + 1)
    counts, _ = np.histogram(sizes, bins=edges)
    return counts, edges


def small_share(sizes, limit):
    """Share of the objects in `sizes` (array or `object_sizes` dict) with fewer
    than `limit` pixels; None without objects."""
    if isinstance(sizes, dict):
        sizes = np.concatenate([np.asarray(v) for v in sizes.values()] or [np.zeros(0)])
    sizes = np.asarray(sizes)
    return float((sizes < limit).mean()) if sizes.size else None
