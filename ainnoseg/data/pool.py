"""The unlabelled pool of self-training: the images a teacher pseudo-labels,
each with a unique stem that names its label PNG.

    pool = open_pool("data/street_photos")      # or "synthetic", a dataset's split
    pool.image(0), pool.stems[0]                # uint8 (3, H, W), "IMG_0001"
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .io import DataError


@dataclass
class Pool:
    """The images to pseudo-label.

    Attributes:
        dataset: the pool as built, without transforms: it yields an image,
            or (image, mask) where the pool is labelled.
        stems: a unique name per image, its PNG's name ("00007" without a file).
        files: each image's file, or None for datasets without files
            (the synthetic scenes).
    """

    dataset: Dataset
    stems: list
    files: list

    @classmethod
    def from_dataset(cls, dataset, limit=0):
        """The first `limit` images (all for 0) of an `ImageFolder` or labelled dataset."""
        count = min(limit, len(dataset)) if limit else len(dataset)
        if hasattr(dataset, "paths"):
            files = [Path(p) for p in dataset.paths[:count]]
        elif hasattr(dataset, "pairs"):
            files = [Path(image) for image, _ in dataset.pairs[:count]]
        else:
            files = [None] * count
        stems = [f"{i:05d}" if f is None else f.stem for i, f in enumerate(files)]
        first = {}
        for stem, file in zip(stems, files):
            if stem in first:
                raise DataError(f"pool images {first[stem]} and {file} share the name {stem!r}; "
                                "pseudo-labels are stored by stem, so rename one of them")
            first[stem] = file
        return cls(dataset, stems, files)

    @property
    def labelled(self):
        return hasattr(self.dataset, "num_classes")

    def __len__(self):
        return len(self.stems)

    def image(self, index):
        """The uint8 image (3, H, W) of pool item `index`."""
        sample = self.dataset[index]
        return sample[0] if isinstance(sample, (tuple, list)) else sample

    def mask(self, index):
        """The ground-truth mask (H, W) of item `index` of a labelled pool."""
        return self.dataset[index][1].as_subclass(torch.Tensor)


def open_pool(name_or_path, split="test", limit=0):
    """The pool `build_dataset(name_or_path, split)` finds: a folder of images,
    a dataset's split (labelled or not) or "synthetic"."""
    from . import build_dataset  # defined in the package's __init__, which imports this module
    return Pool.from_dataset(build_dataset(name_or_path, split, transforms=None), limit)
