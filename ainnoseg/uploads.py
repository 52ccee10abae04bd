"""Images a user uploads: checked before they are decoded, so that a file
that is not an image, or a huge one, becomes a message and not a traceback."""

import io

from PIL import Image, ImageOps, UnidentifiedImageError

from .data import DataError
from .data.io import as_image

MAX_BYTES = 50 * 2**20
MAX_PIXELS = 40_000_000  # about 8000 x 5000: more than any camera frame the models need


def read_upload(data, name="upload", max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS):
    """The uploaded bytes `data` as an RGB uint8 (H, W, 3) array.

    The size is read from the file's header before any pixel is decoded.
    Raises `ainnoseg.data.DataError` naming the file when it is empty, larger
    than `max_bytes`, not an image PIL can read, over `max_pixels`, or damaged.
    """
    if not data:
        raise DataError(f"{name} is empty; upload a PNG or JPEG image")
    if len(data) > max_bytes:
        raise DataError(f"{name} is {len(data) / 2**20:.0f} MB; upload an image of at most "
                        f"{max_bytes / 2**20:.0f} MB")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise DataError(f"{name} is {width} x {height} pixels; upload an image of at "
                                f"most {max_pixels / 1e6:.0f} megapixels (resize it first)")
            image.load()
            upright = ImageOps.exif_transpose(image)  # as `read_image` turns files
            return as_image(upright).permute(1, 2, 0).numpy()
    except DataError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise DataError(f"{name} is not an image that can be read ({error}); upload a PNG, "
                        "JPEG, BMP, TIFF or WebP file") from None
    except (OSError, ValueError, SyntaxError) as error:  # truncated or damaged data
        raise DataError(f"{name} is damaged and cannot be decoded ({error}); upload "
                        "another copy") from None
