"""Images and masks a user gives the demo or the dashboard: checked,
converted, resized, and a note for every change, so that a bad file becomes a
message and not a traceback.

    image = load_image("photo.tif")                 # .pixels: RGB uint8 (H, W, 3); .notes
    image = load_upload(data, "photo.png")          # the same for uploaded bytes
    check_size(image.size, stride=32, scales=(1.0,))
    mask = load_mask("mask.png", image, class_names, palette)

Every refusal is an `ainnoseg.data.DataError` whose message names the file,
what is wrong and what to do.
"""

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..data import IGNORE_INDEX, DataError
from .uploads import MAX_BYTES, MAX_PIXELS, pil_message, read_upload

MAX_SIDE = 640  # larger images are resized: the models were trained on 240-480 px wide frames
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I", "F")


@dataclass
class CheckedImage:
    """An image ready for the models: `pixels` RGB uint8 (H, W, 3), the file's
    `original_size` (height, width) before any resize, and `notes` saying
    what was converted or resized."""

    pixels: np.ndarray
    original_size: tuple
    name: str
    notes: list = field(default_factory=list)

    @property
    def size(self):
        return self.pixels.shape[:2]


def _read_bytes(path, name):
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{name} was not received; upload it again")
    if path.stat().st_size > MAX_BYTES:
        raise DataError(f"{name} is {path.stat().st_size / 2**20:.0f} MB; upload a file of at "
                        f"most {MAX_BYTES / 2**20:.0f} MB")
    return path.read_bytes()


def _header(data):
    """(mode, has transparency) of an image `read_upload` has already read."""
    with Image.open(io.BytesIO(data)) as header:
        return header.mode, "transparency" in header.info


def _mode_note(mode, transparent):
    if mode in _SIXTEEN_BIT:
        return f"a 16-bit ({mode}) image: converted to 8-bit RGB"
    if mode in ("RGBA", "LA", "PA") or transparent:
        return f"an image with transparency ({mode}): composited on black, as RGB"
    if mode in ("L", "1"):
        return "a grayscale image: its one channel repeated as RGB"
    if mode != "RGB":
        return f"a {mode} image: converted to RGB"
    return None


def _resized(pixels, max_side):
    height, width = pixels.shape[:2]
    factor = max_side / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.array(Image.fromarray(pixels).resize(size, Image.BILINEAR, reducing_gap=2.0))


def load_image(path, name=None, max_side=MAX_SIDE):
    """The image file at `path` as a `CheckedImage`: `load_upload` of its bytes."""
    name = name or Path(path).name
    return load_upload(_read_bytes(path, name), name, max_side)


def load_upload(data, name, max_side=MAX_SIDE):
    """The uploaded bytes `data` of the file `name` as a `CheckedImage`, converted to RGB.

    Grayscale, 16-bit, RGBA, palette and CMYK files are converted, and an
    image whose longer side exceeds `max_side` is resized to it (aspect kept);
    each change adds a note. Raises DataError for an empty, damaged or
    non-image file, one over 50 MB or over 40 megapixels (read from its
    header, before decoding).
    """
    pixels = read_upload(data, name)  # refuses empty, huge and damaged files
    image = CheckedImage(pixels, pixels.shape[:2], name)
    note = _mode_note(*_header(data))
    if note:
        image.notes.append(f"{name} is {note}.")
    height, width = pixels.shape[:2]
    if max(height, width) > max_side:
        image.pixels = _resized(pixels, max_side)
        new_height, new_width = image.size
        image.notes.append(
            f"{name} is {width} x {height} pixels: resized to {new_width} x {new_height} for "
            f"the models (longer side at most {max_side}); a mask is resized with it.")
    return image


def check_size(size, stride, scales=(1.0,), name="the image"):
    """Refuse an image `name` of `size` (height, width) that has no pixels, or
    is smaller than the networks' `stride` at the smallest of `scales`."""
    height, width = size
    if min(height, width) < 1:
        raise DataError(f"{name} is {width} x {height} pixels: it has no pixels to segment")
    smallest = min(scales)
    if min(height, width) * smallest < stride:
        at_scale = f" at scale {smallest:g}" if smallest != 1 else ""
        need = int(np.ceil(stride / smallest))
        raise DataError(
            f"{name} is {width} x {height} pixels{at_scale}, smaller than the networks' "
            f"stride of {stride} pixels; use an image of at least {need} x {need} pixels")


def _open_mask(data, name):
    if len(data) == 0:
        raise DataError(f"the mask {name} is empty; upload a PNG of class indices")
    try:
        mask = Image.open(io.BytesIO(data))
        if mask.size[0] * mask.size[1] > MAX_PIXELS:
            raise DataError(f"the mask {name} is {mask.size[0]} x {mask.size[1]} pixels, "
                            "larger than any image the demo takes")
        mask.load()
        return mask
    except DataError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError,
            SyntaxError) as error:
        raise DataError(f"the mask {name} cannot be read as an image "
                        f"({pil_message(error, name)}); upload a PNG of class indices (one "
                        "per pixel, 255 ignored)") from None


def _colours_to_labels(rgb, palette, name):
    """Class ids of a colour mask drawn with `palette`; black (not a class colour) is ignored."""
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    labels = np.full(codes.shape, -1, np.int64)
    lookup = {(r << 16) | (g << 8) | b: index for index, (r, g, b) in enumerate(palette)}
    lookup.setdefault(0, IGNORE_INDEX)
    for code, index in lookup.items():
        labels[codes == code] = index
    if (labels < 0).any():
        unknown = int(codes[labels < 0][0])
        colour = ((unknown >> 16) & 255, (unknown >> 8) & 255, unknown & 255)
        raise DataError(
            f"the mask {name} is a colour image with the colour {colour} at "
            f"{int((labels < 0).sum())} pixels, which is no class colour of these models; "
            "upload a mask of class indices (mode L, one index per pixel, 255 ignored) or one "
            "drawn in the legend's colours")
    return labels


def _labels_of(mask, palette, name):
    if mask.mode in ("L", "P"):
        return np.asarray(mask).astype(np.int64)
    if mask.mode in _SIXTEEN_BIT:
        return np.asarray(mask).astype(np.int64)
    if mask.mode in ("RGB", "RGBA"):
        return _colours_to_labels(np.asarray(mask.convert("RGB")), palette, name)
    raise DataError(f"the mask {name} is a {mask.mode} image; upload a PNG of class indices "
                    "(mode L, 255 ignored)")


def load_mask(path, image, class_names, palette, name=None):
    """The ground-truth mask at `path` for `image` (a `CheckedImage`), as
    (H, W) uint8 class indices (255 ignored) at the image's size.

    Takes index masks (PNG mode L or P, or 16-bit) and colour masks drawn in
    `palette` (black is ignored). Raises DataError when the file cannot be
    read, its size is not the image's, or it holds labels outside
    0..len(class_names) - 1 and 255.
    """
    name = name or Path(path).name
    mask = _open_mask(_read_bytes(path, name), name)
    original_height, original_width = image.original_size
    if mask.size != (original_width, original_height):
        raise DataError(
            f"the mask {name} is {mask.size[0]} x {mask.size[1]} pixels but the image "
            f"{image.name} is {original_width} x {original_height}; upload the mask drawn "
            "for this image (same width and height)")
    labels = _labels_of(mask, palette, name)
    known = (labels < len(class_names)) | (labels == IGNORE_INDEX)
    if not known.all():
        found = sorted(set(np.unique(labels[~known]).tolist()))
        shown = ", ".join(str(label) for label in found[:6]) + (" ..." if len(found) > 6 else "")
        raise DataError(
            f"the mask {name} holds labels {shown}, but these models know "
            f"{len(class_names)} classes (0-{len(class_names) - 1}) and 255 for pixels to "
            "ignore; upload a mask for these classes (set void pixels to 255)")
    labels = labels.astype(np.uint8)
    if tuple(labels.shape) != tuple(image.size):
        height, width = image.size
        labels = np.array(Image.fromarray(labels).resize((width, height), Image.NEAREST))
    return labels
