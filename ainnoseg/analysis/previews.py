"""What training sees, as pictures: Mosaic samples beside their four sources,
and a whole training batch as `MosaicCollate` builds it.

    dataset = training_view("synthetic", crop_size=(192, 256), scale=(256, 320))
    sample = mosaic_preview(dataset, 17, seed=0)   # the same picture every time
    batch = training_batch(dataset, batch_size=8, ratio=0.3, seed=0)

Images come back as uint8 (H, W, 3) arrays and masks as (H, W) uint8 arrays
(255 = ignore), ready for `ainnoseg.viz`.
"""

import numpy as np
import torch

from ..data import IGNORE_INDEX, MosaicCollate, build_dataset, train_transforms
from ..data.mosaic import mosaic_parts
from ..data.transforms import to_uint8

QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")


def _mask(mask):
    return mask.as_subclass(torch.Tensor).to(torch.uint8).numpy()


def training_view(name_or_path, split="train", crop_size=(192, 256), scale=(256, 320),
                  ratio_range=(0.75, 1.5)):
    """A labelled dataset with the training transforms (rescale by a ratio in
    `ratio_range` of `scale`, crop `crop_size`, flip, colour jitter).

    Raises `ainnoseg.data.DataError` for a folder that holds no dataset."""
    if not ratio_range[0] <= ratio_range[1] or ratio_range[0] <= 0:
        raise ValueError(f"ratio_range must be (low, high) with 0 < low <= high, got {ratio_range}")
    transforms = train_transforms(tuple(crop_size), tuple(scale), tuple(ratio_range))
    dataset = build_dataset(name_or_path, split, transforms=transforms)
    if not hasattr(dataset, "num_classes"):
        from ..data import DataError

        raise DataError(f"{name_or_path} ({split}) holds images without labels; Mosaic "
                        "needs a labelled dataset (images and masks)")
    return dataset


def mosaic_preview(dataset, index, seed=0, centre_range=(0.5, 1.5)):
    """Mosaic sample `index` (see `ainnoseg.data.mosaic.mosaic_parts`) as arrays.

    Returns a dict: "index", "image", "mask", "centre" (y, x on the 2x
    canvas), "ignored_share" (canvas no image covers, and ignored labels) and
    "sources": four dicts {"quadrant", "index", "image", "mask"}.
    """
    parts = mosaic_parts(dataset, index, seed, tuple(centre_range))
    mask = _mask(parts["mask"])
    sources = [{"quadrant": quadrant, "index": source_index, "image": to_uint8(image),
                "mask": _mask(source_mask)}
               for quadrant, source_index, (image, source_mask)
               in zip(QUADRANTS, parts["indices"], parts["sources"])]
    return {"index": index, "image": to_uint8(parts["image"]), "mask": mask,
            "centre": parts["centre"], "ignored_share": float((mask == IGNORE_INDEX).mean()),
            "sources": sources}


def training_batch(dataset, batch_size=8, ratio=0.3, centre_range=(0.5, 1.5), seed=0):
    """One training batch as `MosaicCollate` builds it: `batch_size` samples
    (drawn by `seed`) followed by the Mosaic samples the collate adds at
    `ratio` (floor(ratio * batch_size + u), u ~ U(0, 1)).

    Returns a dict: "images", "masks" (lists of arrays), "originals" (how
    many of them come first) and "mosaics".
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randint(len(dataset), (batch_size,), generator=generator).tolist()
    ignore_index = getattr(dataset, "ignore_index", IGNORE_INDEX)
    collate = MosaicCollate(ratio, tuple(centre_range), ignore_index)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        images, masks = collate([dataset[i] for i in indices])
    return {"images": [to_uint8(image) for image in images],
            "masks": [np.asarray(_mask(mask)) for mask in masks],
            "originals": batch_size, "mosaics": images.shape[0] - batch_size}
