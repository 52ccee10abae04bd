"""Visualisation helpers: coloured label maps, overlays, boundaries, error maps, legends.

Pure functions. Images go in as uint8 (H, W, 3) arrays or uint8 (3, H, W)
tensors, label maps as (H, W) integer arrays or tensors; every picture comes
back as a uint8 (H, W, 3) numpy array.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from . import metrics
from .data import IGNORE_INDEX

# The colours of `error_map`, named so that a UI can draw a key.
ERROR_COLORS = {
    "correct": (64, 64, 64),
    "boundary error": (255, 160, 0),
    "interior error": (220, 20, 20),
    "ignored": (0, 0, 0),
}


def _as_numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _image(image):
    """uint8 (H, W, 3) from an (H, W, 3) or (H, W) array, or a (3, H, W) tensor."""
    channels_first = isinstance(image, torch.Tensor)  # torch images are (C, H, W)
    array = _as_numpy(image)
    if array.ndim == 3 and (channels_first or array.shape[-1] not in (1, 3)):
        array = array.transpose(1, 2, 0)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise ValueError(f"image must be (H, W, 3) or a (3, H, W) tensor, got shape "
                         f"{tuple(_as_numpy(image).shape)}")
    if array.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {array.dtype}; convert a [0, 1] float "
                         "image with (image * 255).round() and a cast to uint8 first")
    return np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array


def _labels(labels, name="labels"):
    array = _as_numpy(labels)
    if array.ndim != 2:
        raise ValueError(f"{name} must be an (H, W) label map, got shape {array.shape}; "
                         "squeeze any batch or channel axis first")
    if array.dtype == bool:
        return array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class ids, got {array.dtype}; "
                         "take the argmax over classes of logits first")
    return array


def _check_shapes(first, second, names):
    if first.shape[:2] != second.shape[:2]:
        raise ValueError(f"{names[0]} is {first.shape[0]}x{first.shape[1]} (HxW) but "
                         f"{names[1]} is {second.shape[0]}x{second.shape[1]}; resize one "
                         "to the other (labels with nearest-neighbour interpolation)")


def _palette(palette, labels, ignore_index):
    colors = np.asarray(palette)
    if colors.ndim != 2 or colors.shape[1] != 3:
        raise ValueError(f"palette must be a list of (r, g, b) colours, got shape {colors.shape}")
    used = labels[labels != ignore_index]
    if used.size and used.min() < 0:
        raise ValueError(f"labels contain the negative class id {int(used.min())}; "
                         f"only class ids and the ignore index {ignore_index} can be coloured")
    if used.size and used.max() >= len(colors):
        highest = int(used.max())
        raise ValueError(f"palette has {len(colors)} colours but the labels use class id "
                         f"{highest}; pass a palette with at least {highest + 1} colours")
    return colors.astype(np.uint8)


def colorize(labels, palette, ignore_index=IGNORE_INDEX, ignore_color=(0, 0, 0)):
    """Paint each class id with its palette colour, and ignored pixels with `ignore_color`."""
    labels = _labels(labels)
    colors = _palette(palette, labels, ignore_index)
    valid = labels != ignore_index
    out = np.empty(labels.shape + (3,), np.uint8)
    out[:] = ignore_color
    out[valid] = colors[labels[valid]]
    return out


def overlay(image, labels, palette, alpha=0.5, ignore_index=IGNORE_INDEX):
    """Blend label colours over an image with weight `alpha`; ignored pixels keep the image."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    image, labels = _image(image), _labels(labels)
    _check_shapes(image, labels, ("image", "labels"))
    colors = colorize(labels, palette, ignore_index).astype(np.float32)
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colors
    out = np.round(blended).astype(np.uint8)
    ignored = labels == ignore_index
    out[ignored] = image[ignored]
    return out


def label_boundaries(labels, width=1):
    """Bool (H, W) mask of pixels with a different label within `width` px.

    The neighbourhood is the (2 * width + 1) square, as in Boundary IoU; every
    value counts as a label, the ignore index included. Pixels beyond the image
    edge do not count, so the image border is not a boundary.
    """
    labels = _labels(labels)
    if int(width) != width or width < 1:
        raise ValueError(f"width must be a positive integer number of pixels, got {width!r}")
    # Max and min pooling find a differing neighbour; float32 holds ids exactly.
    values = torch.from_numpy(labels.astype(np.float32))[None, None]
    size, pad = 2 * int(width) + 1, int(width)
    highest = F.max_pool2d(values, size, stride=1, padding=pad)
    lowest = -F.max_pool2d(-values, size, stride=1, padding=pad)
    return ((highest != values) | (lowest != values))[0, 0].numpy()


def draw_boundaries(image, labels, color=(255, 255, 255), width=1):
    """The image with the boundaries of `labels` (see `label_boundaries`) painted in `color`."""
    image, labels = _image(image), _labels(labels)
    _check_shapes(image, labels, ("image", "labels"))
    out = image.copy()
    out[label_boundaries(labels, width)] = color
    return out


def error_map(pred, target, ignore_index=IGNORE_INDEX, boundary_width=None):
    """Where a prediction is wrong, split into boundary and interior errors.

    Colours (`ERROR_COLORS`): correct pixels dark grey, errors within
    `boundary_width` px of a ground-truth boundary orange, other errors red,
    ignored ground truth black. `boundary_width` defaults to the band width
    of Boundary IoU, `ainnoseg.metrics.boundary_width`.
    """
    pred, target = _labels(pred, "pred"), _labels(target, "target")
    _check_shapes(pred, target, ("pred", "target"))
    if boundary_width is None:
        boundary_width = metrics.boundary_width(*target.shape)
    near_boundary = label_boundaries(target, boundary_width)
    wrong = pred != target
    out = np.empty(target.shape + (3,), np.uint8)
    out[:] = ERROR_COLORS["correct"]
    out[wrong & near_boundary] = ERROR_COLORS["boundary error"]
    out[wrong & ~near_boundary] = ERROR_COLORS["interior error"]
    out[target == ignore_index] = ERROR_COLORS["ignored"]
    return out


def legend(class_names, palette, swatch=16):
    """A key image: one row per class, its colour swatch then its name.

    Row i starts at y = 4 + i * (swatch + 4); the swatch spans x = 4 .. 4 + swatch.
    """
    if len(class_names) == 0:
        raise ValueError("class_names is empty; a legend needs at least one class")
    if len(palette) < len(class_names):
        raise ValueError(f"palette has {len(palette)} colours for {len(class_names)} "
                         "classes; pass one colour per class")
    font = ImageFont.load_default()
    pad, row = 4, swatch + 4
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_width = max(measure.textlength(str(name), font=font) for name in class_names)
    size = (int(math.ceil(3 * pad + swatch + text_width)), pad + row * len(class_names))
    canvas = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (name, color) in enumerate(zip(class_names, palette)):
        top = pad + i * row
        draw.rectangle([pad, top, pad + swatch - 1, top + swatch - 1],
                       fill=tuple(int(c) for c in color), outline=(128, 128, 128))
        _, upper, _, lower = draw.textbbox((0, 0), str(name), font=font)
        text_y = top + (swatch - (lower - upper)) / 2 - upper
        draw.text((2 * pad + swatch, text_y), str(name), fill=(0, 0, 0), font=font)
    return np.asarray(canvas).copy()
