"""The demo's handler on uploads it cannot segment: each is one gr.Error that
names the file and says what to do, with no object repr and no traceback.
Uploads come as the file dicts Gradio's events get (a temporary path and the
original name)."""

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[demo]')")

from demo_helpers import load_handlers, write_release_set, write_scene  # noqa: E402
from huge_images import write_huge_png  # noqa: E402

from ainnoseg.checkpoints.sets import ModelStore  # noqa: E402


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return ModelStore(write_release_set(tmp_path_factory.mktemp("releases")))


def _upload(path, name):
    return {"path": str(path), "orig_name": name}


def _segment(store, image, mask=None, **settings):
    handlers = load_handlers()
    settings = handlers.Settings(store=store, camvid=None, **settings)
    return handlers.segment(settings, image, mask, "synthetic", None, False, 0.5, False, True)


@pytest.mark.parametrize("size", [1, 3])
def test_an_image_smaller_than_the_stride_gets_the_size_needed(store, tmp_path, size):
    Image.new("RGB", (size, size), 90).save(tmp_path / "upload", "PNG")
    with pytest.raises(gr.Error, match=rf"dot.png is {size} x {size} pixels, smaller than the "
                                       r"networks' stride of 32 pixels; use an image of at "
                                       r"least 32 x 32 pixels"):
        _segment(store, _upload(tmp_path / "upload", "dot.png"))


def test_a_mask_that_is_no_image_is_named_without_an_object_repr(store, tmp_path):
    image, _ = write_scene(tmp_path / "scene.png", (64, 80))
    (tmp_path / "upload").write_bytes(b"GIF89a, or so it says")
    with pytest.raises(gr.Error) as caught:
        _segment(store, str(image), _upload(tmp_path / "upload", "truth.png"))
    message = str(caught.value)
    assert "the mask truth.png cannot be read" in message
    assert "BytesIO" not in message and " at 0x" not in message


@pytest.mark.parametrize("size, message", [
    ((9000, 5000), "photo.png is 9000 x 5000 pixels; upload an image of at most 40 megapixels"),
    ((30000, 30000), r"photo.png is far too large \(Image size \(900000000 pixels"),
])
def test_an_image_too_large_for_memory_is_refused_from_its_header(store, tmp_path, size,
                                                                  message):
    path = write_huge_png(tmp_path / "upload", *size)
    with pytest.raises(gr.Error, match=message):
        _segment(store, _upload(path, "photo.png"))


def test_a_large_image_is_resized_with_a_note(store, tmp_path):
    Image.fromarray(np.full((300, 1000, 3), 90, np.uint8)).save(tmp_path / "upload", "PNG")
    out = _segment(store, _upload(tmp_path / "upload", "wide.png"), max_side=200)
    assert out["HRNet picture"].shape == (60, 200, 3)
    assert "wide.png is 1000 x 300 pixels: resized to 200 x 60" in out["notes"]
