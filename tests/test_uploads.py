import io

import numpy as np
import pytest
from PIL import Image

from ainnoseg.data import DataError
from ainnoseg.uploads import read_upload


def _png(size=(30, 20), mode="RGB"):
    buffer = io.BytesIO()
    Image.new(mode, size, 128).save(buffer, "PNG")
    return buffer.getvalue()


def test_an_image_upload_becomes_an_rgb_array():
    array = read_upload(_png(mode="L"), "grey.png")
    assert array.shape == (20, 30, 3) and array.dtype == np.uint8 and (array == 128).all()


@pytest.mark.parametrize("data, message", [
    (b"", "is empty"),
    (b"this is a text file, not a picture", "is not an image"),
])
def test_a_file_that_is_no_image_is_refused_with_its_name(data, message):
    with pytest.raises(DataError, match=f"notes.txt {message}"):
        read_upload(data, "notes.txt")


def test_a_damaged_image_is_refused():
    with pytest.raises(DataError, match="cut.png is"):
        read_upload(_png()[:60], "cut.png")


def test_a_huge_image_is_refused_from_its_header_before_decoding():
    with pytest.raises(DataError, match="is 30 x 20 pixels"):
        read_upload(_png(), "big.png", max_pixels=100)
    with pytest.raises(DataError, match="of at most"):
        read_upload(_png(), "big.png", max_bytes=10)
