"""Mosaic augmentation (YOLOv4; mmseg's RandomMosaic), as AinnoSeg uses it.

Four samples are stitched around a random centre on a canvas twice their
size, labels the same way, uncovered canvas = ignore, and the canvas is scaled
back to the sample size, so objects shrink by half: more small objects.

Halving the labels is where thin objects can vanish: a nearest-neighbour
resize keeps one pixel of each 2x2 block, so a pole 1 pixel wide on the canvas
survives on every other column only. `mask_resize="rarest"` keeps, in each
block, the label that is rarest on the whole canvas instead (ignore only where
the block holds nothing else), so thin and small objects keep at least one
pixel wherever they touched a block, at the price of growing them by up to
half a pixel.

Mosaic samples are made from the samples already in a training batch by
`MosaicCollate`, at the paper's ratio of 0.3 mosaic samples per original. That
needs no dataset wrapper and loads no image twice (two bugs mmseg users hit).
"""

import torch
from torch.utils.data import default_collate
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

from .io import IGNORE_INDEX

MASK_RESIZES = ("nearest", "rarest")


def _quadrant_boxes(centre, height, width):
    """(canvas box, source box) for each quadrant, as (top, bottom, left, right)."""
    cy, cx = centre
    boxes = []
    for below in (False, True):
        for right in (False, True):
            top, bottom = (cy, min(cy + height, 2 * height)) if below else (max(cy - height, 0), cy)
            left, rgt = (cx, min(cx + width, 2 * width)) if right else (max(cx - width, 0), cx)
            rows, cols = bottom - top, rgt - left
            # Each image touches the centre with its inner corner.
            src_top = 0 if below else height - rows
            src_left = 0 if right else width - cols
            boxes.append(((top, bottom, left, rgt),
                          (src_top, src_top + rows, src_left, src_left + cols)))
    return boxes


def halve_rarest(labels, ignore_index=IGNORE_INDEX):
    """(2h, 2w) labels -> (h, w): each 2x2 block's label that has the fewest
    pixels on the whole map; ignore_index only for blocks of nothing else."""
    height, width = labels.shape[0] // 2, labels.shape[1] // 2
    blocks = labels[:2 * height, :2 * width].reshape(height, 2, width, 2)
    blocks = blocks.permute(0, 2, 1, 3).reshape(height, width, 4).long()
    values, counts = torch.unique(blocks, return_counts=True)
    counts[values == ignore_index] = blocks.numel() + 1  # ignore loses to any class
    rank = torch.empty(int(values.max()) + 1, dtype=torch.long)
    rank[values] = counts
    choice = rank[blocks].argmin(dim=-1, keepdim=True)
    return blocks.gather(-1, choice).squeeze(-1).to(labels.dtype)


def stitch(images, masks, centre, ignore_index=IGNORE_INDEX, mask_resize="nearest"):
    """Four (C, h, w) images and (h, w) masks -> one (C, h, w) image and mask.

    Args:
        images, masks: sequences of four equally sized tensors.
        centre: (y, x) on the (2h, 2w) canvas where the four images meet.
        mask_resize: how the (2h, 2w) labels are halved: "nearest" or
            "rarest" (see the module doc).
    """
    if mask_resize not in MASK_RESIZES:
        raise ValueError(f"mask_resize {mask_resize!r} is not one of {list(MASK_RESIZES)}")
    channels, height, width = images[0].shape
    canvas = images[0].new_zeros(channels, 2 * height, 2 * width)
    label_canvas = masks[0].new_full((2 * height, 2 * width), ignore_index)
    for image, mask, (dst, src) in zip(images, masks, _quadrant_boxes(centre, height, width)):
        canvas[:, dst[0]:dst[1], dst[2]:dst[3]] = image[:, src[0]:src[1], src[2]:src[3]]
        label_canvas[dst[0]:dst[1], dst[2]:dst[3]] = mask[src[0]:src[1], src[2]:src[3]]
    image = TF.resize(tv_tensors.Image(canvas), [height, width], antialias=True)
    if mask_resize == "rarest":
        return image.as_subclass(torch.Tensor), halve_rarest(label_canvas, ignore_index)
    mask = TF.resize(tv_tensors.Mask(label_canvas), [height, width])
    return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)


def random_centre(height, width, centre_range=(0.5, 1.5), generator=None):
    low, high = centre_range
    fractions = low + (high - low) * torch.rand(2, generator=generator)
    return int(fractions[0] * height), int(fractions[1] * width)


class MosaicCollate:
    """Collate function adding Mosaic samples built from the batch itself.

    For a batch of B samples it appends floor(ratio * B + u), u ~ U(0, 1),
    mosaics (0.3 * B on average), each from four distinct samples of the
    batch (with repeats when B < 4). Randomness comes from torch's global
    generator, which the DataLoader seeds per worker, so a seeded run repeats.

    Args:
        ratio: mosaic samples per original sample (the paper: 0.3).
        centre_range: where the four images meet, as a fraction of the size.
        ignore_index: label of canvas pixels no image covers.
        mask_resize: how the canvas's labels are halved, "nearest" or
            "rarest" (see the module doc).
    """

    def __init__(self, ratio=0.3, centre_range=(0.5, 1.5), ignore_index=IGNORE_INDEX,
                 mask_resize="nearest"):
        if ratio < 0:
            raise ValueError(f"mosaic ratio must be >= 0, got {ratio}")
        if mask_resize not in MASK_RESIZES:
            raise ValueError(f"mask_resize {mask_resize!r} is not one of {list(MASK_RESIZES)}")
        self.ratio = ratio
        self.centre_range = centre_range
        self.ignore_index = ignore_index
        self.mask_resize = mask_resize

    def __call__(self, samples):
        images, masks = default_collate(samples)
        count = int(self.ratio * len(samples) + torch.rand(()).item())
        if count == 0:
            return images, masks
        mosaics = [self.make(images, masks) for _ in range(count)]
        new_images, new_masks = zip(*mosaics)
        return torch.cat([images, torch.stack(new_images)]), torch.cat([masks, torch.stack(new_masks)])

    def choose(self, batch, size, generator=None):
        """(the four batch indices, in quadrant order: top-left, top-right,
        bottom-left, bottom-right; the centre (y, x)) of one mosaic."""
        if batch >= 4:
            chosen = torch.randperm(batch, generator=generator)[:4]
        else:
            chosen = torch.randint(batch, (4,), generator=generator)
        return chosen, random_centre(*size, self.centre_range, generator)

    def make(self, images, masks, generator=None):
        """One mosaic from four samples of the batch tensors (B, C, h, w), (B, h, w)."""
        chosen, centre = self.choose(images.shape[0], images.shape[-2:], generator)
        return stitch(images[chosen], masks[chosen], centre, self.ignore_index, self.mask_resize)


def mosaic_parts(dataset, index, seed=0, centre_range=(0.5, 1.5)):
    """Mosaic sample number `index` of a dataset and what it is made of.

    Picks four samples and a centre from a generator seeded by (seed, index)
    and runs the dataset's own (random) transforms under that seed, so the
    dashboard can show "sample 17" again. The dataset must return equally
    sized tensors (training transforms with a crop).

    Returns a dict: "image" (C, h, w) and "mask" (h, w), the mosaic;
    "indices", the four dataset indices in quadrant order (top-left,
    top-right, bottom-left, bottom-right); "sources", their (image, mask) as
    transformed; "centre", (y, x) on the (2h, 2w) canvas.
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
    if len(dataset) >= 4:
        chosen = torch.randperm(len(dataset), generator=generator)[:4].tolist()
    else:
        chosen = torch.randint(len(dataset), (4,), generator=generator).tolist()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch.randint(2**62, (), generator=generator).item())
        samples = [dataset[i] for i in chosen]
    images, masks = default_collate(samples)
    mosaic = MosaicCollate(1.0, centre_range, getattr(dataset, "ignore_index", IGNORE_INDEX))
    order, centre = mosaic.choose(4, images.shape[-2:], torch.Generator().manual_seed(
        torch.randint(2**62, (), generator=generator).item()))
    image, mask = stitch(images[order], masks[order], centre, mosaic.ignore_index)
    return {"image": image, "mask": mask, "indices": [chosen[i] for i in order.tolist()],
            "sources": [(images[i], masks[i]) for i in order.tolist()], "centre": centre}


def mosaic_sample(dataset, index, seed=0, centre_range=(0.5, 1.5)):
    """(image, mask) of Mosaic sample number `index` of a dataset, the same
    every time (see `mosaic_parts`, which also returns its four sources)."""
    parts = mosaic_parts(dataset, index, seed, centre_range)
    return parts["image"], parts["mask"]
