"""`ainnoseg.inference.inputs`: the demo's images and masks, converted with a note or
refused with a message naming the file and the fix."""

import numpy as np
import pytest
from PIL import Image

from ainnoseg.data import DataError
from ainnoseg.data.synthetic import CLASS_NAMES, PALETTE
from ainnoseg.inference.inputs import CheckedImage, check_size, load_image, load_mask, load_upload
from huge_images import huge_png_bytes


def _save(tmp_path, array, name="image.png", mode=None):
    path = tmp_path / name
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def _rgb(height=40, width=60):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_an_rgb_image_is_taken_as_it_is(tmp_path):
    pixels = _rgb()
    image = load_image(_save(tmp_path, pixels), name="street.png")
    assert np.array_equal(image.pixels, pixels) and image.notes == []
    assert image.size == (40, 60) and image.original_size == (40, 60)
    assert image.name == "street.png"


def test_grayscale_rgba_and_16_bit_images_are_converted_with_a_note(tmp_path):
    grey = _rgb()[..., 0]
    image = load_image(_save(tmp_path, grey, "grey.png"))
    assert np.array_equal(image.pixels, np.repeat(grey[..., None], 3, axis=-1))
    assert "grayscale" in image.notes[0] and "grey.png" in image.notes[0]

    rgba = np.dstack([_rgb(), np.zeros((40, 60), np.uint8)])
    rgba[:, :30, 3] = 255
    image = load_image(_save(tmp_path, rgba, "alpha.png"))
    assert "transparency" in image.notes[0]
    assert (image.pixels[:, 30:] == 0).all()  # transparent pixels composited on black
    assert np.array_equal(image.pixels[:, :30], rgba[:, :30, :3])

    deep = np.full((40, 60), 65535, np.uint16)
    deep[:, :30] = 257 * 100
    path = tmp_path / "deep.png"
    Image.fromarray(deep).save(path)
    image = load_image(path)
    assert "16-bit" in image.notes[0]
    assert (image.pixels[:, 30:] == 255).all() and (image.pixels[:, :30] == 100).all()


def test_a_huge_image_is_resized_with_a_note_and_keeps_its_original_size(tmp_path):
    image = load_image(_save(tmp_path, _rgb(100, 300), "wide.png"), max_side=150)
    assert image.size == (50, 150) and image.original_size == (100, 300)
    assert "300 x 100" in image.notes[0] and "150 x 50" in image.notes[0]


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"this is no image", "not an image file"),
    (None, "damaged"),  # a PNG cut in half
])
def test_empty_foreign_and_damaged_files_are_refused_by_name(tmp_path, content, message):
    path = tmp_path / "upload.png"
    if content is None:
        Image.fromarray(_rgb()).save(path)
        content = path.read_bytes()[:len(path.read_bytes()) // 2]
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        load_image(path, name="holiday.png")
    assert "holiday.png" in str(caught.value)


def test_an_image_smaller_than_the_stride_is_refused_with_the_size_needed():
    check_size((64, 80), stride=32)
    with pytest.raises(DataError, match="20 x 24 pixels, smaller than the networks' stride of 32"):
        check_size((24, 20), stride=32)
    with pytest.raises(DataError, match="at scale 0.75.*at least 43 x 43"):
        check_size((40, 100), stride=32, scales=(0.75, 1.0, 1.25))


def _image(height=40, width=60):
    return CheckedImage(_rgb(height, width), (height, width), "street.png")


def test_an_index_mask_is_read_and_255_stays_ignored(tmp_path):
    labels = np.zeros((40, 60), np.uint8)
    labels[:, 30:], labels[:5] = 10, 255
    mask = load_mask(_save(tmp_path, labels, "mask.png"), _image(), CLASS_NAMES, PALETTE)
    assert np.array_equal(mask, labels) and mask.dtype == np.uint8


def test_a_colour_mask_in_the_palette_becomes_indices_with_black_ignored(tmp_path):
    labels = np.zeros((40, 60), np.uint8)
    labels[:, 20:], labels[:, 40:] = 3, 8
    colours = np.asarray(PALETTE, np.uint8)[labels]
    colours[:4] = 0
    mask = load_mask(_save(tmp_path, colours, "colours.png"), _image(), CLASS_NAMES, PALETTE)
    expected = labels.copy()
    expected[:4] = 255
    assert np.array_equal(mask, expected)
    colours[10, 10] = (1, 2, 3)
    with pytest.raises(DataError, match=r"colour \(1, 2, 3\) at 1 pixels"):
        load_mask(_save(tmp_path, colours, "colours.png"), _image(), CLASS_NAMES, PALETTE)


def test_a_mask_of_another_size_or_with_unknown_labels_is_refused(tmp_path):
    with pytest.raises(DataError, match="is 50 x 40 pixels but the image street.png is 60 x 40"):
        load_mask(_save(tmp_path, np.zeros((40, 50), np.uint8)), _image(), CLASS_NAMES, PALETTE)
    labels = np.zeros((40, 60), np.uint8)
    labels[0, :3] = (11, 12, 200)
    with pytest.raises(DataError, match=r"labels 11, 12, 200, but these models know 11 classes"):
        load_mask(_save(tmp_path, labels), _image(), CLASS_NAMES, PALETTE, name="gt.png")
    path = tmp_path / "broken.png"
    path.write_bytes(b"garbage")
    with pytest.raises(DataError, match="the mask broken.png cannot be read"):
        load_mask(path, _image(), CLASS_NAMES, PALETTE)


def test_the_mask_of_a_resized_image_is_resized_with_nearest_labels(tmp_path):
    image = load_image(_save(tmp_path, _rgb(100, 300), "wide.png"), max_side=150)
    labels = np.zeros((100, 300), np.uint8)
    labels[:, 150:] = 7
    mask = load_mask(_save(tmp_path, labels, "mask.png"), image, CLASS_NAMES, PALETTE)
    assert mask.shape == (50, 150) and set(np.unique(mask)) == {0, 7}
    assert (mask[:, :74] == 0).all() and (mask[:, 76:] == 7).all()


def test_an_upload_is_checked_and_resized_like_a_file_with_a_note(tmp_path):
    data = _save(tmp_path, _rgb(100, 300), "wide.png").read_bytes()
    image = load_upload(data, "wide.png", max_side=150)
    assert image.size == (50, 150) and image.original_size == (100, 300)
    assert image.notes == ["wide.png is 300 x 100 pixels: resized to 150 x 50 for the models "
                           "(longer side at most 150); a mask is resized with it."]
    with pytest.raises(DataError, match="wide.png is 9000 x 5000 pixels; upload an image of "
                                        "at most 40 megapixels"):
        load_upload(huge_png_bytes(9000, 5000), "wide.png")  # from the header: never decoded


def test_an_image_without_pixels_is_refused():
    with pytest.raises(DataError, match="frame.png is 0 x 0 pixels: it has no pixels"):
        check_size((0, 0), stride=32, name="frame.png")


def test_a_mask_that_is_no_image_is_named_without_an_object_repr(tmp_path):
    path = tmp_path / "upload_3f2a"
    path.write_bytes(b"this is no image")
    with pytest.raises(DataError, match="cannot identify image file truth.png") as caught:
        load_mask(path, _image(), CLASS_NAMES, PALETTE, name="truth.png")
    assert "BytesIO" not in str(caught.value) and " at 0x" not in str(caught.value)
