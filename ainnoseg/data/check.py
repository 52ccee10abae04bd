"""`ainnoseg data check PATH`: what a dataset folder holds and what is wrong with it."""

from collections import Counter

import torch

from . import build_dataset, detect_layout
from .datasets import LabeledImages, MissingFolder
from .io import DataError

SPLITS = ("train", "val", "test")


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
        try:
            if isinstance(dataset, LabeledImages):
                image, mask = dataset.load(index)
            else:
                image, mask = dataset[index], None
        except DataError as error:
            problems.append((_sample_name(dataset, index), str(error)))
            continue
        sizes[f"{image.shape[-1]}x{image.shape[-2]}"] += 1
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


def _sample_name(dataset, index):
    if hasattr(dataset, "pairs"):
        return str(dataset.pairs[index][0])
    return str(dataset.paths[index])


def check_dataset(root):
    """{"layout": ..., "splits": {split: check_split(...)}} for a dataset folder."""
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
        report["splits"][split] = check_split(dataset)
    if not report["splits"]:
        raise DataError(f"{root} holds no readable split ({', '.join(SPLITS)})")
    return report


def format_report(report):
    lines = [f"layout: {report['layout']}"]
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
