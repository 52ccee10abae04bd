"""Reading images and label maps from disk, with errors that name the file."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision import tv_tensors

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

# A decompression-bomb guard that still admits very large photographs.
Image.MAX_IMAGE_PIXELS = 400_000_000


class DataError(ValueError):
    """A problem with a data file; the message names the file and the fix."""


def list_images(folder):
    """Image files directly in `folder`, sorted by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _open(path):
    try:
        image = Image.open(path)
        image.load()
        return image
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise DataError(f"cannot read {path}: {error}") from error


def _to_rgb(image):
    """Any PIL mode -> RGB: 16-bit images map 0..65535 to 0..255 (those
    holding only 0..255 stay as they are), transparency is dropped
    (composited on black)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        scale = 1.0 / 257.0 if values.max() > 255 else 1.0
        image = Image.fromarray(np.clip(np.round(values * scale), 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def read_image(path):
    """An RGB `tv_tensors.Image` (3, H, W) uint8, upright as EXIF says.

    Grayscale, palette, RGBA, 16-bit and CMYK files are all converted.
    """
    image = _open(path)
    image = ImageOps.exif_transpose(image)
    array = np.asarray(_to_rgb(image))
    return tv_tensors.Image(torch.from_numpy(array.copy()).permute(2, 0, 1))


def read_mask(path):
    """A label map as a `tv_tensors.Mask` (H, W) uint8 of class indices.

    The file must hold indices (PNG mode L or P, or 16-bit with values up to
    255), not colours: an RGB mask is refused with an explanation.
    """
    mask = _open(path)
    if mask.mode in ("L", "P"):
        array = np.asarray(mask)
    elif mask.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(mask)
        if array.max() > 255:
            raise DataError(
                f"mask {path} holds label {array.max()}; labels must be at most 255 "
                "(255 marks pixels to ignore)")
        array = array.astype(np.uint8)
    else:
        raise DataError(
            f"mask {path} is a {mask.mode} image; masks must hold one class index per "
            "pixel (PNG mode L or P), not colours: convert colour masks to indices first")
    return tv_tensors.Mask(torch.from_numpy(array.copy()))
