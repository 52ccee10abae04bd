import io

import numpy as np
import pytest
from PIL import Image

from ainnoseg.data import DataError
from ainnoseg.inference.uploads import pil_message, read_upload
from huge_images import huge_png_bytes


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


@pytest.mark.parametrize("data, message", [
    (b"GIF89a this is not a picture", "notes.gif is not an image file that can be read"),
    (_png()[:60], "notes.gif is damaged and cannot be decoded"),
    (huge_png_bytes(30000, 30000), r"notes.gif is far too large \(Image size \(900000000 pixels"),
])
def test_messages_name_the_upload_and_never_show_an_object_repr(data, message):
    with pytest.raises(DataError, match=message) as caught:
        read_upload(data, "notes.gif")
    assert "BytesIO" not in str(caught.value) and " at 0x" not in str(caught.value)


def test_pil_messages_about_an_in_memory_file_name_the_upload():
    error = OSError("cannot identify image file <_io.BytesIO object at 0x7f9d2a3062f0>")
    assert pil_message(error, "street.png") == "cannot identify image file street.png"
