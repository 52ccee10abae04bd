"""Images a user uploads: checked before they are decoded, so that a file
that is not an image, or a huge one, becomes a message and not a traceback.

Messages name the upload by its file name: PIL's own messages about an
in-memory file show the file object's repr, which no user should see."""

import io
import re

from PIL import Image, ImageOps, UnidentifiedImageError

from ..data import DataError
from ..data.io import as_image

MAX_BYTES = 50 * 2**20
MAX_PIXELS = 40_000_000  # about 8000 x 5000: more than any camera frame the models need
_OBJECT_REPR = re.compile(r"<[^<>]* object at 0x[0-9a-fA-F]+>")


def pil_message(error, name):
    """The message of a PIL `error` about the upload `name`, with any object
    repr (`<_io.BytesIO object at 0x...>`) replaced by the name."""
    return _OBJECT_REPR.sub(name, str(error))


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
    too_many = (f"upload an image of at most {max_pixels / 1e6:.0f} megapixels "
                "(resize it first)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise DataError(f"{name} is {width} x {height} pixels; {too_many}")
            image.load()
            upright = ImageOps.exif_transpose(image)  # as `read_image` turns files
            return as_image(upright).permute(1, 2, 0).numpy()
    except DataError:
        raise
    except UnidentifiedImageError:
        raise DataError(f"{name} is not an image file that can be read; upload a PNG, JPEG, "
                        "BMP, TIFF or WebP image") from None
    except Image.DecompressionBombError as error:  # PIL refuses it at open, before our check
        raise DataError(f"{name} is far too large ({pil_message(error, name)}); "
                        f"{too_many}") from None
    except (OSError, ValueError, SyntaxError) as error:  # truncated or damaged data
        raise DataError(f"{name} is damaged and cannot be decoded ({pil_message(error, name)}); "
                        "upload another copy") from None
