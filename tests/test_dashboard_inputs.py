"""The dashboard's Predictions and Mosaic pages on bad images, under
streamlit's AppTest: a dataset folder with a damaged, huge, tiny or
mislabelled sample, and uploads too small, too large or not images, each get
one message on the page (st.error, or st.info for a resize), never a traceback."""

import io
import re

import numpy as np
import pytest

pytest.importorskip("streamlit",
                    reason="the dashboard tests need streamlit: pip install -e .[test]")
from PIL import Image  # noqa: E402

from data_trees import stripes, write_image, write_mask  # noqa: E402
from huge_images import huge_png_bytes, write_huge_png  # noqa: E402

from test_dashboard import open_app, rerun as _rerun, texts as _texts  # noqa: E402


def _open(page, monkeypatch, tmp_path):
    monkeypatch.setenv("AINNOSEG_RUNS", str(tmp_path / "runs"))
    return open_app(page)


def _mask_of_another_size(image, mask):
    write_image(image, 64, 96)
    write_mask(mask, np.zeros((32, 48)))


def _labels_outside_the_classes(image, mask):
    write_image(image, 64, 96)
    write_mask(mask, stripes(64, 96, values=(0, 7)))


def _three_by_three(image, mask):
    write_image(image, 3, 3)
    write_mask(mask, np.zeros((3, 3)))


def _huge_header(image, mask):
    write_huge_png(image, 30000, 30000)
    write_mask(mask, np.zeros((64, 96)))


def _truncated(image, mask):
    write_image(image, 64, 96)
    image.write_bytes(image.read_bytes()[:200])
    write_mask(mask, np.zeros((64, 96)))


BAD_SAMPLES = {  # how sample 0 is broken: the message, where the page cannot show it
    _mask_of_another_size: r"mask .*img0.png is 48x32 but its image .*img0.png is 96x64",
    _labels_outside_the_classes: r"holds labels \[7\] outside the 3 classes",
    _three_by_three: (r"img0 is 3 x 3 pixels, smaller than the networks' stride of 32 "
                      r"pixels; use an image of at least 32 x 32"),
    _huge_header: r"img0.png: it is too large \(Image size \(900000000 pixels",
    _truncated: r"cannot read .*img0.png",
}


def _bad_folder(root, make):
    """A folder dataset whose only sample is broken by `make(image, mask)`."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("background\ncat\ndog\n")
    make(root / "images" / "img0.png", root / "masks" / "img0.png")
    return root


def _choose_folder(app, key, folder):
    app.selectbox(key=key).select("another folder...")
    _rerun(app)
    app.text_input(key=f"{key}_folder").input(str(folder))
    return _rerun(app)


@pytest.mark.parametrize("make", list(BAD_SAMPLES), ids=lambda make: make.__name__[1:])
def test_a_bad_sample_is_one_message_on_the_predictions_page(tmp_path, monkeypatch, make):
    folder = _bad_folder(tmp_path / "bad", make)
    app = _choose_folder(_open("predictions.py", monkeypatch, tmp_path), "pred_data", folder)
    assert re.search(BAD_SAMPLES[make], _texts(app.error)), _texts(app.error)


@pytest.mark.parametrize("make", list(BAD_SAMPLES), ids=lambda make: make.__name__[1:])
def test_a_bad_sample_is_one_message_or_none_on_the_mosaic_page(tmp_path, monkeypatch, make):
    folder = _bad_folder(tmp_path / "bad", make)
    app = _choose_folder(_open("mosaic.py", monkeypatch, tmp_path), "mosaic_data", folder)
    if make is _three_by_three:  # training rescales every image: tiny ones are fine there
        assert not app.error and [s.value for s in app.subheader][:1] == ["Sample 17"]
    else:
        assert re.search(BAD_SAMPLES[make], _texts(app.error)), _texts(app.error)


def _png(width, height):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 60)).save(buffer, "PNG")
    return buffer.getvalue()


def _upload(app, name, data):
    app.file_uploader(key="pred_upload").clear().upload(name, data)
    return _rerun(app)


def test_uploads_too_small_too_large_or_no_images_get_one_message(tmp_path, monkeypatch):
    app = _open("predictions.py", monkeypatch, tmp_path)
    app.radio(key="pred_source").set_value("upload")
    _rerun(app)
    for size in (1, 3):
        _upload(app, f"dot{size}.png", _png(size, size))
        assert (f"dot{size}.png is {size} x {size} pixels, smaller than the networks' stride of "
                "32 pixels; use an image of at least 32 x 32 pixels") in _texts(app.error)
    _upload(app, "wide.png", _png(1600, 1000))
    assert not app.error
    assert ("wide.png is 1600 x 1000 pixels: resized to 640 x 400 for the models"
            in _texts(app.info))
    assert app.get("image")[0].proto.imgs[0].caption == "image (640 x 400)"
    _upload(app, "bomb.png", huge_png_bytes(30000, 30000))
    assert "bomb.png is far too large" in _texts(app.error)
    _upload(app, "panorama.png", huge_png_bytes(9000, 5000))
    assert "panorama.png is 9000 x 5000 pixels; upload an image of at most 40" in _texts(
        app.error)
    _upload(app, "notes.png", b"GIF89a not really")
    message = _texts(app.error)
    assert "notes.png is not an image file" in message and "BytesIO" not in message


def test_an_image_that_cannot_be_scored_is_named_in_one_message(tmp_path, monkeypatch):
    from ainnoseg.data.synthetic import CLASS_NAMES

    folder = _bad_folder(tmp_path / "bad", _three_by_three)
    (folder / "images" / "img0.png").rename(folder / "images" / "img1.png")
    (folder / "masks" / "img0.png").rename(folder / "masks" / "img1.png")
    write_image(folder / "images" / "img0.png", 64, 96)
    write_mask(folder / "masks" / "img0.png", stripes(64, 96, values=(0, 3)))
    (folder / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")  # the models' classes
    app = _choose_folder(_open("predictions.py", monkeypatch, tmp_path), "pred_data", folder)
    assert not app.error and app.dataframe  # img0's scores
    app.slider(key="worst_limit").set_value(2)
    _rerun(app)
    app.button(key="worst_go").click()
    _rerun(app)
    assert ("Cannot score the 2 images: img1: the image is 3 x 3 pixels, smaller than the "
            "networks' stride of 32 pixels") in _texts(app.error)
