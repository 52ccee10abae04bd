"""Datasets on disk. Each returns (tv_tensors.Image, tv_tensors.Mask) and knows
its class names, palette and ignore index."""

from pathlib import Path

import torch
from torch.utils.data import Dataset

from .ade20k_classes import ADE20K_CLASSES
from .io import IGNORE_INDEX, IMAGE_SUFFIXES, DataError, list_images, read_image, read_mask
from .palettes import CAMVID_PALETTE, default_palette

CAMVID_CLASSES = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol",
                  "Fence", "Car", "Pedestrian", "Bicyclist"]


def sample_path(dataset, index):
    """The image file of sample `index` of a dataset on disk."""
    if hasattr(dataset, "pairs"):
        return Path(dataset.pairs[index][0])
    return Path(dataset.paths[index])


def sample_name(dataset, index):
    """The file stem of sample `index`, or "<split> 00017" for the synthetic scenes."""
    if hasattr(dataset, "pairs") or hasattr(dataset, "paths"):
        return sample_path(dataset, index).stem
    return f"{getattr(dataset, 'split', 'sample')} {index:05d}"


def _lookup_table(mapping):
    """256-entry table for uint8 labels; entries not in `mapping` map to -1 (invalid)."""
    table = torch.full((256,), -1, dtype=torch.int16)
    for source, target in mapping.items():
        table[source] = target
    return table


class LabeledImages(Dataset):
    """Pairs of image and label files with a fixed label mapping.

    Args:
        pairs: list of (image path, mask path).
        class_names: names of classes 0..K-1 after mapping.
        palette: (r, g, b) per class.
        label_map: file label -> class index or IGNORE_INDEX; file labels not in
            it are reported as errors naming the file.
        transforms: callable (image, mask) -> (image, mask), e.g. from `transforms.py`.
        images_without_masks: images left out for lack of a mask (for reports).
    """

    ignore_index = IGNORE_INDEX
    new_class_hint = ""  # how a label that is a missing class is added, where it can be

    def __init__(self, pairs, class_names, palette, label_map, transforms=None,
                 images_without_masks=()):
        if not pairs:
            raise DataError("the dataset is empty: no image has a mask")
        self.pairs = list(pairs)
        self.images_without_masks = list(images_without_masks)
        self.class_names = list(class_names)
        self.palette = list(palette)
        self.table = _lookup_table(label_map)
        self.transforms = transforms

    @property
    def num_classes(self):
        return len(self.class_names)

    def __len__(self):
        return len(self.pairs)

    def load(self, index):
        """The sample before transforms, checked: sizes agree, labels are known."""
        image_path, mask_path = self.pairs[index]
        image = read_image(image_path)
        return image, self.classes_of(mask_path, image.shape[-2:], image_path)

    def classes_of(self, mask_path, image_size, image_path):
        """The mask at `mask_path` as class indices, checked against its image's
        (height, width) and the dataset's label mapping."""
        mask = read_mask(mask_path)
        if tuple(image_size) != tuple(mask.shape[-2:]):
            raise DataError(
                f"mask {mask_path} is {mask.shape[-1]}x{mask.shape[-2]} but its image "
                f"{image_path} is {image_size[-1]}x{image_size[-2]} (width x height); "
                "masks must match their images pixel for pixel")
        labels = self.table[mask.long()]
        if (labels < 0).any():
            unknown = torch.unique(mask[labels < 0]).tolist()
            raise DataError(
                f"mask {mask_path} holds labels {unknown} outside the "
                f"{self.num_classes} classes of this dataset; valid file labels are "
                f"{_ranges(torch.nonzero(self.table >= 0).flatten().tolist())}. If "
                f"{unknown[-1]} marks pixels to ignore (CamVid's void is 11), set those "
                f"pixels to {IGNORE_INDEX} in the masks{self.new_class_hint}")
        return type(mask)(labels.to(torch.uint8))

    def __getitem__(self, index):
        image, mask = self.load(index)
        if self.transforms is not None:
            image, mask = self.transforms(image, mask)
        return image, mask


def _ranges(values):
    """[0, 1, 2, 3, 255] -> "0-3 and 255"."""
    runs = []
    for value in sorted(values):
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    parts = [f"{a}-{b}" if b > a + 1 else (f"{a}, {b}" if b > a else f"{a}") for a, b in runs]
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def _pair_by_stem(image_folder, mask_folder, mask_suffix=".png"):
    """(image, mask) for every image whose mask has the same stem; the rest are
    returned as images without masks."""
    pairs, unmatched = [], []
    for image_path in list_images(image_folder):
        mask_path = Path(mask_folder) / f"{image_path.stem}{mask_suffix}"
        if mask_path.is_file():
            pairs.append((image_path, mask_path))
        else:
            unmatched.append(image_path)
    return pairs, unmatched


class MissingFolder(DataError):
    """A folder the layout needs is not there (e.g. a split a dataset lacks)."""


def _require_folder(path, what):
    if not Path(path).is_dir():
        raise MissingFolder(f"{what} folder {path} does not exist")
    return Path(path)


class ADE20K(LabeledImages):
    """ADEChallengeData2016: images/{training,validation}/*.jpg and
    annotations/{training,validation}/*.png; 150 classes, file label 0
    ("other") ignored and labels 1..150 shifted down to 0..149."""

    SPLITS = {"train": "training", "val": "validation"}

    def __init__(self, root, split="train", transforms=None):
        folder = self.SPLITS.get(split, split)
        images = _require_folder(Path(root) / "images" / folder, "ADE20K image")
        masks = _require_folder(Path(root) / "annotations" / folder, "ADE20K annotation")
        pairs, unmatched = _pair_by_stem(images, masks)
        label_map = {0: IGNORE_INDEX, **{k + 1: k for k in range(150)}}
        super().__init__(pairs, ADE20K_CLASSES, default_palette(150), label_map, transforms,
                         unmatched)


class CamVid(LabeledImages):
    """CamVid in the SegNet layout: train/, trainannot/, val/, valannot/ (and
    test/, testannot/ where available); 11 classes, label 11 (void) ignored."""

    def __init__(self, root, split="train", transforms=None):
        images = _require_folder(Path(root) / split, "CamVid image")
        masks = _require_folder(Path(root) / f"{split}annot", "CamVid label")
        pairs, unmatched = _pair_by_stem(images, masks)
        label_map = {**{k: k for k in range(11)}, 11: IGNORE_INDEX}
        super().__init__(pairs, CAMVID_CLASSES, CAMVID_PALETTE, label_map, transforms, unmatched)


def read_class_names(path):
    names = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if len(names) < 2:
        raise DataError(f"{path} names {len(names)} classes; list at least 2, one per line")
    return names


class FolderDataset(LabeledImages):
    """A user's own data: root/images/*.jpg|png..., root/masks/<same stem>.png
    (one class index per pixel, 255 = ignore) and root/classes.txt (one class
    name per line, in label order). Optional split folders images/<split>/ and
    masks/<split>/ are used when they exist; without them every split is the
    whole folder (`split_folders` is False), so training validates on its own
    images, which `ainnoseg train` warns about."""

    new_class_hint = "; if it is a class, add its name to classes.txt"

    def __init__(self, root, split="train", transforms=None):
        root = Path(root)
        images, masks = root / "images", root / "masks"
        self.split_folders = (images / split).is_dir()
        if self.split_folders:
            images, masks = images / split, masks / split
        elif images.is_dir() and any(path.is_dir() for path in images.iterdir()):
            present = sorted(path.name for path in images.iterdir() if path.is_dir())
            raise MissingFolder(f"{root} has no {split} split: images/ holds the split "
                                f"folders {', '.join(present)} but not {split}/")
        _require_folder(images, "image")
        _require_folder(masks, "mask")
        names_file = root / "classes.txt"
        if not names_file.is_file():
            raise DataError(f"{names_file} is missing: list the class names there, one per line")
        names = read_class_names(names_file)
        pairs, unmatched = _pair_by_stem(images, masks)
        label_map = {**{k: k for k in range(len(names))}, IGNORE_INDEX: IGNORE_INDEX}
        super().__init__(pairs, names, default_palette(len(names)), label_map, transforms,
                         unmatched)


class ImageFolder(Dataset):
    """Unlabeled images in one folder (the self-training pool).

    Returns `tv_tensors.Image` alone; `paths[index]` names its file.
    """

    def __init__(self, root, transforms=None):
        self.paths = list_images(_require_folder(root, "image"))
        if not self.paths:
            raise DataError(f"no images ({' '.join(IMAGE_SUFFIXES)}) found in {root}")
        self.transforms = transforms

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        image = read_image(self.paths[index])
        return self.transforms(image) if self.transforms is not None else image

