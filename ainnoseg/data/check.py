"""`ainnoseg data check PATH`: what a dataset folder holds and what is wrong with it.

`check_dataset` reads every pixel; `quick_check`, its fast path, opens the
images' headers and decodes only the masks (small files), which is what
training runs before it starts (`require_readable`).
"""

from collections import Counter

import torch
from PIL import Image, UnidentifiedImageError

from ..models.backbones import HRNetV2
from . import build_dataset, detect_layout
from .datasets import FolderDataset, LabeledImages, MissingFolder, sample_path
from .io import DataError

SPLITS = ("train", "val", "test")
SHOWN_PROBLEMS = 10  # in an error message; `ainnoseg data check` lists them all
# The networks' coarsest output stride: a smaller image cannot be evaluated or
# pseudo-labelled (training pads its crops, evaluation does not).
MIN_SIDE = HRNetV2.stride


def too_small(path, height, width):
    """A problem message for an image smaller than MIN_SIDE, else None."""
    if min(height, width) >= MIN_SIDE:
        return None
    return (f"{path} is {width}x{height}, smaller than {MIN_SIDE}x{MIN_SIDE}: the networks "
            f"downsample by {MIN_SIDE}, so it cannot be evaluated; use images of at least "
            f"{MIN_SIDE} pixels a side")


def check_split(dataset):
    """Counts, image sizes, class histogram and problems of one dataset split.

    Returns a dict: samples, sizes {"WxH": count}, histogram {class: pixels},
    ignored_pixels, problems [(file, message)].
    """
    sizes, problems = Counter(), []
    histogram = torch.zeros(getattr(dataset, "num_classes", 0), dtype=torch.int64)
    ignored = 0
    for path in getattr(dataset, "images_without_masks", []):
        problems.append((str(path), "image without a mask"))
    for index in range(len(dataset)):
        path = str(sample_path(dataset, index))
        try:
            if isinstance(dataset, LabeledImages):
                image, mask = dataset.load(index)
            else:
                image, mask = dataset[index], None
        except DataError as error:
            problems.append((path, str(error)))
            size = _header_size(path)
            if size is not None:  # the image is fine, its mask is not
                sizes[f"{size[1]}x{size[0]}"] += 1
            continue
        sizes[f"{image.shape[-1]}x{image.shape[-2]}"] += 1
        small = too_small(path, *image.shape[-2:])
        if small:
            problems.append((path, small))
        if mask is not None:
            labels = mask.flatten().long()
            valid = labels != dataset.ignore_index
            ignored += int((~valid).sum())
            histogram += torch.bincount(labels[valid], minlength=len(histogram))
    names = getattr(dataset, "class_names", [])
    return {
        "samples": len(dataset),
        "sizes": dict(sizes),
        "histogram": {name: int(count) for name, count in zip(names, histogram)},
        "ignored_pixels": ignored,
        "problems": problems,
    }


def _header_size(path):
    """(height, width) of an image as `read_image` turns it upright, from its
    header alone; None if the file does not open."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF: turned by 90 degrees
                width, height = height, width
            return height, width
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None


def _verified_size(path):
    """(height, width) of a readable image; a DataError names a file that does
    not open or whose data is cut short or damaged (PNG chunks are checked)."""
    size = _header_size(path)
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as error:  # PIL raises many types for damaged files
        raise DataError(f"cannot read {path}: {error}") from error
    if size is None:
        raise DataError(f"cannot read {path}: not an image file")
    return size


def quick_check(dataset):
    """The fast path of the data check: [(file, message)] for images that do
    not open or are damaged or are smaller than MIN_SIDE, masks of another
    size than their image, colour masks and labels outside the classes. Images are not decoded (their
    headers are read and PNG data verified); masks are."""
    problems = []
    if isinstance(dataset, LabeledImages):
        for image_path, mask_path in dataset.pairs:
            try:
                size = _verified_size(image_path)
                dataset.classes_of(mask_path, size, image_path)
                _require_large_enough(image_path, size)
            except DataError as error:
                problems.append((str(image_path), str(error)))
    elif hasattr(dataset, "paths"):
        for path in dataset.paths:
            try:
                _require_large_enough(path, _verified_size(path))
            except DataError as error:
                problems.append((str(path), str(error)))
    return problems


def _require_large_enough(path, size):
    message = too_small(path, *size)
    if message:
        raise DataError(message)


def require_readable(datasets, before="training"):
    """Raise one DataError listing, by file, every problem `quick_check` finds
    in `datasets`, {what it is (e.g. "the train split of data/pets"): dataset}."""
    problems = list(dict.fromkeys(  # once each, where two splits are the same files
        problem for dataset in datasets.values() for problem in quick_check(dataset)))
    if not problems:
        return
    shown = "; ".join(message if path in message else f"{path}: {message}"
                      for path, message in problems[:SHOWN_PROBLEMS])
    more = len(problems) - SHOWN_PROBLEMS
    raise DataError(f"{len(problems)} problem(s) in {' and '.join(datasets)}, found before "
                    f"{before}: {shown}" + (f"; and {more} more" if more > 0 else "")
                    + "; `ainnoseg data check` lists every problem of a dataset folder")


def check_dataset(root):
    """{"layout": ..., "splits": {split: check_split(...)}} for a dataset folder.

    A folder of images/ + masks/ without split folders is checked once, as
    split "all" (every split is then the whole folder)."""
    layout = detect_layout(root)
    report = {"layout": layout, "splits": {}}
    if layout == "images":
        report["splits"]["all"] = check_split(build_dataset(root))
        return report
    for split in SPLITS:
        try:
            dataset = build_dataset(root, split)
        except MissingFolder:
            continue
        except DataError as error:
            report["splits"][split] = {"samples": 0, "sizes": {}, "histogram": {},
                                       "ignored_pixels": 0, "problems": [(str(root), str(error))]}
            continue
        if isinstance(dataset, FolderDataset) and not dataset.split_folders:
            report["note"] = ("no split folders (images/train/, images/val/): train, val and "
                              "test are all the same images")
            report["splits"] = {"all": check_split(dataset)}
            return report
        report["splits"][split] = check_split(dataset)
    if not report["splits"]:
        raise DataError(f"{root} holds no readable split ({', '.join(SPLITS)})")
    return report


def format_report(report):
    lines = [f"layout: {report['layout']}"]
    if report.get("note"):
        lines.append(f"note: {report['note']}")
    for split, result in report["splits"].items():
        lines.append(f"\n[{split}] {result['samples']} samples")
        sizes = ", ".join(f"{size} ({count})" for size, count in result["sizes"].items())
        lines.append(f"  image sizes: {sizes or 'none readable'}")
        total = sum(result["histogram"].values()) + result["ignored_pixels"]
        for name, pixels in result["histogram"].items():
            lines.append(f"  {name:<20} {pixels:>12} px {100 * pixels / max(total, 1):6.2f}%")
        if result["histogram"]:
            lines.append(f"  {'(ignored)':<20} {result['ignored_pixels']:>12} px")
        for path, message in result["problems"]:
            lines.append(f"  PROBLEM {path}: {message}")
    problems = sum(len(r["problems"]) for r in report["splits"].values())
    lines.append(f"\n{problems} problem(s) found")
    return "\n".join(lines)
