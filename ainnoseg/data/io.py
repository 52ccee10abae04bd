"""Reading images and label maps from disk, with errors that name the file."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision import tv_tensors

# The label of pixels that no metric or loss counts (void, unlabelled,
# below a pseudo-label's confidence threshold): every dataset of the project
# marks them 255, the one value a uint8 mask has beside up to 255 classes.
IGNORE_INDEX = 255
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# Larger images are refused from their header, before a pixel is decoded: a
# 100-megapixel photograph passes (300 MB as RGB), a small file that claims
# 24000 x 24000 pixels (a decompression bomb) does not. PIL's own limit, a
# global of PIL's, is left as it is; it refuses still larger images at open.
MAX_PIXELS = 100_000_000


class DataError(ValueError):
    """A problem with a data file; the message names the file and the fix."""


def list_images(folder):
    """Image files directly in `folder`, sorted by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _open(path):
    """The image at `path`, decoded once its header's size is checked."""
    try:
        image = Image.open(path)
    except Image.DecompressionBombError as error:
        raise DataError(f"cannot read {path}: it is too large ({error}); resize it to at most "
                        f"{MAX_PIXELS / 1e6:.0f} megapixels") from None
    except (OSError, UnidentifiedImageError) as error:
        raise DataError(f"cannot read {path}: {error}") from error
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise DataError(f"cannot read {path}: it is {width} x {height} pixels, more than the "
                        f"{MAX_PIXELS / 1e6:.0f} megapixels ainnoseg reads; resize it first")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as error:  # truncated or damaged data
        raise DataError(f"cannot read {path}: {error}") from error
    return image


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


def as_image(image):
    """Any image a user holds -> an RGB `tv_tensors.Image` (3, H, W) uint8.

    Takes a file path, a PIL image of any mode (converted as `read_image`
    converts files), a NumPy array (H, W, 3) or (H, W, 4) or (H, W) of uint8,
    or a uint8 tensor (3, H, W), (1, H, W) or (H, W).
    """
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, Image.Image):
        array = np.asarray(_to_rgb(image))
        return tv_tensors.Image(torch.from_numpy(array.copy()).permute(2, 0, 1))
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise DataError(f"an image array must be uint8 (0-255), got {image.dtype}; "
                            "convert it, e.g. (array * 255).round().astype(np.uint8)")
        if image.ndim == 3 and image.shape[-1] in (3, 4):
            return tv_tensors.Image(torch.from_numpy(image[..., :3].copy()).permute(2, 0, 1))
        if image.ndim == 2:
            return tv_tensors.Image(torch.from_numpy(image.copy()).expand(3, -1, -1).clone())
        raise DataError(f"an image array must be shaped (H, W, 3), (H, W, 4) or (H, W), "
                        f"got {image.shape}")
    if isinstance(image, torch.Tensor):
        if image.dtype != torch.uint8:
            raise DataError(
                f"an image tensor must be uint8 (0-255), got {image.dtype}; for normalised "
                "float batches call ainnoseg.predict(model, images) instead")
        if image.ndim == 2:
            image = image.unsqueeze(0)
        if image.ndim == 3 and image.shape[0] in (1, 3):
            return tv_tensors.Image(image.expand(3, -1, -1).clone())
        raise DataError(f"an image tensor must be shaped (3, H, W), (1, H, W) or (H, W), "
                        f"got {tuple(image.shape)}")
    raise DataError(f"cannot read an image from a {type(image).__name__}; give a file path, "
                    "a PIL image, a uint8 NumPy array (H, W, 3) or a uint8 tensor (3, H, W)")
