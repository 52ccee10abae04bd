"""Tiny dataset trees in the exact layouts the loaders support, for tests."""

from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path, height=24, width=32, seed=0, suffix_mode="RGB"):
    rng = np.random.default_rng(seed)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(
        suffix_mode).save(path)


def write_mask(path, labels):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(labels, dtype=np.uint8)).save(path)


def stripes(height=24, width=32, values=(0, 1, 2)):
    """Vertical stripes of the given labels, left to right."""
    columns = np.array_split(np.arange(width), len(values))
    labels = np.zeros((height, width), dtype=np.uint8)
    for value, cols in zip(values, columns):
        labels[:, cols] = value
    return labels


def ade20k_tree(root, count=2):
    for split in ("training", "validation"):
        for i in range(count):
            stem = f"ADE_{split[:5]}_{i:08d}"
            write_image(root / "images" / split / f"{stem}.jpg", seed=i)
            write_mask(root / "annotations" / split / f"{stem}.png", stripes(values=(0, 1, 150)))
    return root


def camvid_tree(root, count=2, height=24, width=32):
    for split in ("train", "val", "test"):
        for i in range(count):
            write_image(root / split / f"0001TP_{i:06d}.png", height, width, seed=i)
            if split != "test":
                write_mask(root / f"{split}annot" / f"0001TP_{i:06d}.png",
                           stripes(height, width, values=(0, 3, 11)))
    return root


def folder_tree(root, count=3, classes=("background", "cat", "dog"), height=24, width=32):
    (root / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    for i in range(count):
        write_image(root / "images" / f"img{i}.jpg", height, width, seed=i)
        write_mask(root / "masks" / f"img{i}.png", stripes(height, width, values=(0, 1, 255)))
    return root
