"""Datasets, transforms and Mosaic, the unlabelled pool of self-training, and
the one `IGNORE_INDEX`; `build_dataset` recognises layouts from a path."""

from pathlib import Path

from .ade20k_classes import ADE20K_CLASSES
from .datasets import (CAMVID_CLASSES, ADE20K, CamVid, FolderDataset, ImageFolder, LabeledImages,
                       MissingFolder, sample_name, sample_path)
from .io import IGNORE_INDEX, DataError, read_image, read_mask
from .mosaic import MosaicCollate, mosaic_sample
from .palettes import CAMVID_PALETTE, default_palette
from .pool import Pool, open_pool
from .synthetic import SyntheticScenes
from .transforms import eval_transforms, to_uint8, train_transforms

LAYOUTS = """\
  ADE20K   images/{training,validation}/*.jpg + annotations/{training,validation}/*.png
  CamVid   train/ + trainannot/, val/ + valannot/, test/ (SegNet layout)
  folder   images/ + masks/ (same stems) + classes.txt, optionally images/<split>/
  images   a folder of images alone (unlabeled, e.g. a self-training pool)"""
CAMVID_SPLITS = ("train", "val", "test")
# The built-in datasets' classes and colours, for `palette_of`.
BUILT_IN_PALETTES = ((CAMVID_CLASSES, CAMVID_PALETTE),
                     (SyntheticScenes.class_names, SyntheticScenes.palette),
                     (ADE20K_CLASSES, default_palette(len(ADE20K_CLASSES))))


def palette_of(class_names):
    """The current palette of the built-in dataset (CamVid, the synthetic
    scenes, ADE20K) whose classes are `class_names`, in that order; None for
    other classes. A checkpoint stores the palette of its day: this gives
    the colours the apps draw today."""
    for names, palette in BUILT_IN_PALETTES:
        if list(class_names) == list(names):
            return list(palette)
    return None


def detect_layout(root):
    """'ade20k', 'camvid', 'folder' or 'images' for a dataset folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"no dataset folder at {root}")
    if (root / "images" / "training").is_dir() or (root / "images" / "validation").is_dir():
        if (root / "annotations").is_dir():
            return "ade20k"
    if any((root / split).is_dir() and (root / f"{split}annot").is_dir()
           for split in CAMVID_SPLITS):
        return "camvid"
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "folder"
    return "images"


def build_dataset(name_or_path, split="train", transforms=None, **options):
    """A dataset by name ("synthetic") or by the layout found at a path.

    Args:
        name_or_path: "synthetic" for the embedded scenes, or a folder in one of
            the layouts of `LAYOUTS`.
        split: "train", "val" or "test". A split without labels (CamVid's
            test/) gives an `ImageFolder` of its images.
        transforms: callable (image, mask) -> (image, mask); for unlabeled
            images, image -> image.
        **options: passed to `SyntheticScenes` (size, length, seed).
    """
    if str(name_or_path) == "synthetic":
        dataset = SyntheticScenes(split=split, **options)
        dataset.transforms = transforms
        return dataset
    layout = detect_layout(name_or_path)
    root = Path(name_or_path)
    if layout == "ade20k":
        return ADE20K(root, split, transforms)
    if layout == "camvid":
        if not (root / split).is_dir():
            present = [name for name in CAMVID_SPLITS if (root / name).is_dir()]
            raise MissingFolder(f"the CamVid folder {root} has no {split}/ split (it has "
                                f"{', '.join(present)}); add {split}/ and {split}annot/, or "
                                "name a split it has")
        if not (root / f"{split}annot").is_dir():
            return ImageFolder(root / split, transforms)
        return CamVid(root, split, transforms)
    if layout == "folder":
        return FolderDataset(root, split, transforms)
    try:
        return ImageFolder(root, transforms)
    except DataError as error:
        raise DataError(f"{error}; a dataset folder has one of these layouts:\n{LAYOUTS}") from None


# The modules check, examples and object_sizes are public too:
# `from ainnoseg.data import examples`.
__all__ = [
    "ADE20K", "CamVid", "DataError", "FolderDataset", "IGNORE_INDEX", "ImageFolder",
    "LabeledImages", "MissingFolder", "MosaicCollate", "Pool", "SyntheticScenes",
    "build_dataset", "check", "detect_layout", "eval_transforms", "examples", "mosaic_sample",
    "object_sizes", "open_pool", "palette_of", "read_image", "read_mask", "sample_name",
    "sample_path", "to_uint8", "train_transforms",
]
