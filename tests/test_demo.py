"""The Gradio demo (app/demo.py): its handlers as plain functions, then the
running demo driven through `gradio_client`: the columns with and without a
mask, multi-scale, an added checkpoint, every bad input (a message left on the
page), two requests at once.

The model set is three random-weight checkpoints (`demo_helpers`), so the
tests need neither the synthetic zoo nor CamVid; images are 64 x 80 scenes.
"""

import re

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[demo]')")
client_module = pytest.importorskip("gradio_client", reason="gradio_client is not installed")

from demo_helpers import (demo_settings, read_picture, running_demo,  # noqa: E402
                          write_checkpoint, write_release_set, write_scene)

from ainnoseg.analysis import compare  # noqa: E402
from ainnoseg.inference import segment_image  # noqa: E402
from ainnoseg.checkpoints.sets import ModelStore  # noqa: E402

Client, handle_file = client_module.Client, client_module.handle_file
SIZE = (64, 80)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A release set of the three families, scenes, and every kind of bad input."""
    tmp = tmp_path_factory.mktemp("demo")
    found = {"releases": write_release_set(tmp / "releases")}
    found["image"], found["mask"] = write_scene(tmp / "scene.png", SIZE)
    found["other"], _ = write_scene(tmp / "other.png", (72, 96), index=1)
    pixels = read_picture(found["image"])
    Image.fromarray(pixels[..., 0]).save(tmp / "grey.png")
    Image.fromarray(np.dstack([pixels, np.full(SIZE, 128, np.uint8)])).save(tmp / "rgba.png")
    Image.fromarray(pixels[..., 1].astype(np.uint16) * 257).save(tmp / "deep.png")
    Image.fromarray(np.tile(pixels, (3, 3, 1))).save(tmp / "huge.png")  # 192 x 240
    Image.fromarray(pixels[:20, :24]).save(tmp / "tiny.png")
    (tmp / "broken.png").write_bytes(b"\x89PNG this is not an image")
    Image.fromarray(np.zeros((SIZE[0], SIZE[1] - 1), np.uint8)).save(tmp / "narrow_mask.png")
    labels = np.zeros(SIZE, np.uint8)
    labels[0, 0] = 11
    Image.fromarray(labels).save(tmp / "label_11_mask.png")
    (tmp / "notes.pt").write_bytes(b"not a checkpoint")
    write_checkpoint(tmp / "five_classes.pt", "hrnetv2_w18s", num_classes=5)
    found.update({name: tmp / f"{name}.png" for name in
                  ("grey", "rgba", "deep", "huge", "tiny", "broken", "narrow_mask",
                   "label_11_mask")})
    found.update(notes=tmp / "notes.pt", five=tmp / "five_classes.pt",
                 mine=found["releases"] / "synthetic" / "hrnetv2_w18s.pt")
    return found


@pytest.fixture(scope="module")
def store(files):
    """The test release set's models, loaded once for every test here."""
    return ModelStore(files["releases"])


@pytest.fixture(scope="module")
def demo(store):
    """(module, client) of the demo running with the test release set."""
    with running_demo(STORE=store, CAMVID=None, MAX_SIDE=128) as (app, url):
        yield app, Client(url, verbose=False)


def _segment(client, image, mask=None, extra=None, multiscale=False, opacity=0.5,
             boundaries_only=False, disagreement=True):
    upload = (lambda path: None if path is None else handle_file(str(path)))
    return client.predict(upload(image), upload(mask), "synthetic", upload(extra), multiscale,
                          opacity, boundaries_only, disagreement, api_name="/segment")


def _status(app, result):
    """The message a request left on the page (the status above the results)."""
    return _named(app, result)[app.status]


def _named(app, result):
    """{component: returned value} (the API leaves out the state and columns)."""
    shown = [c for c in app.segment_outputs if not isinstance(c, (gr.State, gr.Column))]
    assert len(shown) == len(result)
    return dict(zip(shown, result))


def _value(returned):
    return returned.get("value") if isinstance(returned, dict) else returned


def _visible(returned):
    return returned.get("visible", True) if isinstance(returned, dict) else True


def test_file_values_are_paths_or_the_dicts_events_get_unprocessed():
    app = pytest.importorskip("demo_helpers").load_demo()
    assert app._file(None) == (None, None)
    assert app._file("/tmp/x/a.png") == ("/tmp/x/a.png", "a.png")
    assert app._file({"path": "/tmp/x/b", "orig_name": "street.png"}) == ("/tmp/x/b", "street.png")
    with pytest.raises(gr.Error, match="did not arrive"):
        app._file({"path": None})


def test_the_handlers_segment_redraw_compare_scales_and_set_up_the_page(files, store):
    with demo_settings(STORE=store, CAMVID=None) as app:
        out = app.segment(str(files["image"]), None, "synthetic", None, False, 0.5, False, True)
        pictures = [out[slot.picture] for slot in app.slots[:3]]
        assert all(picture.shape == SIZE + (3,) for picture in pictures)
        assert "**DANet** `synthetic/danet_r18`" in out[app.slots[1].caption]
        assert out[app.ranking].visible is False and out[app.slots[3].column].visible is False
        state = out[app.results_state]
        outlines = app.redraw(state, 0.5, True, True)
        assert not np.array_equal(outlines[app.slots[0].picture], pictures[0])
        assert app.redraw(None, 0.5, True, True) == {}
        slider, changed, text = app.compare_scales(str(files["image"]), str(files["mask"]),
                                                   "synthetic", None, "AinnoSeg", 0.5, False)
        assert [picture.shape for picture in slider] == [SIZE + (3,)] * 2
        assert changed.shape == SIZE + (3,) and "mIoU" in text and "(0.75, 1, 1.25)" in text
        note, models, *columns = app.set_changed("synthetic")
        assert note.startswith("**The synthetic models**")  # the set's card, none missing
        assert models.choices == [(f, f) for f in ("HRNet", "DANet", "AinnoSeg")]
        assert [column.visible for column in columns] == [True, True, True, False]
        sets, multiscale, example_list, note, *_ = app.page_setup()
        assert sets.value == "synthetic" and "0.75, 1, 1.25" in multiscale.label
        samples = example_list.raw_samples
        assert len(samples) == len(app.demo_examples()) >= 3
        assert "synthetic_val_" in samples[0][0]
        image, mask, chosen = app.pick_example(0, "synthetic")
        assert image == samples[0][0] and mask.endswith(".png") and chosen == "synthetic"


def test_the_command_line_binds_to_localhost_unless_told_otherwise(monkeypatch, tmp_path):
    app = pytest.importorskip("demo_helpers").load_demo()
    launched = []
    monkeypatch.setattr(app.demo, "launch", lambda **options: launched.append(options))
    with demo_settings(STORE=app.STORE, CAMVID=app.CAMVID, SCALES=app.SCALES,
                       MAX_SIDE=app.MAX_SIDE):
        app.main([])
        assert launched[-1]["server_name"] == "127.0.0.1" and launched[-1]["share"] is False
        assert launched[-1]["server_port"] == 7860
        app.main(["--host", "0.0.0.0", "--port", "8080", "--share", "--camvid", str(tmp_path),
                  "--scales", "0.5", "1", "--max-side", "320", "--releases", str(tmp_path)])
        assert launched[-1]["server_name"] == "0.0.0.0" and launched[-1]["share"] is True
        assert str(tmp_path) in launched[-1]["allowed_paths"]
        assert (app.CAMVID, app.SCALES, app.MAX_SIDE) == (tmp_path, (0.5, 1.0), 320)
        assert app.STORE.root == tmp_path
    with pytest.raises(SystemExit):
        app.parse_args(["--camvid", str(tmp_path / "none")])
    with pytest.raises(SystemExit):
        app.parse_args(["--scales", "0"])


def test_the_examples_are_the_synthetic_scenes_then_the_camvid_frames(tmp_path):
    camvid = tmp_path / "camvid"
    for folder in ("val", "valannot"):
        (camvid / folder).mkdir(parents=True)
    Image.fromarray(np.zeros((64, 80, 3), np.uint8)).save(camvid / "val" / "f0.png")
    Image.fromarray(np.zeros((64, 80), np.uint8)).save(camvid / "valannot" / "f0.png")
    with demo_settings(CAMVID=camvid) as app:
        found = app.demo_examples()
        assert found[0]["source"] == "synthetic" and found[-1]["name"] == "camvid f0"
        assert app.pick_example(len(found) - 1, "synthetic")[0] == str(camvid / "val" / "f0.png")


def test_three_columns_without_a_mask_show_predictions_times_and_parameters(demo, files):
    app, client = demo
    out = _named(app, _segment(client, files["image"]))
    for slot, name in zip(app.slots[:3], ("HRNet", "DANet", "AinnoSeg")):
        assert read_picture(out[slot.picture]).shape == SIZE + (3,)
        caption = out[slot.caption]
        assert caption.startswith(f"**{name}** `synthetic/") and "s on this machine" in caption
        assert "M parameters" in caption and "mIoU" not in caption
        assert not _visible(out[slot.errors])
    assert not _visible(out[app.ranking]) and not _visible(out[app.truth_picture])
    assert read_picture(_value(out[app.disagreement])).shape == SIZE + (3,)
    assert "The 3 models give different labels" in _value(out[app.disagreement_text])
    assert "scene.png**, 80 x 64 pixels" in out[app.notes]
    assert read_picture(out[app.legend]).shape[0] > 100  # 11 classes


def test_with_a_mask_each_column_adds_scores_and_errors_and_a_table_ranks_them(demo, files):
    app, client = demo
    out = _named(app, _segment(client, files["image"], files["mask"]))
    for slot in app.slots[:3]:
        assert "mIoU" in out[slot.caption] and "boundary F" in out[slot.caption]
        errors = read_picture(_value(out[slot.errors]))
        assert _visible(out[slot.errors]) and errors.shape == SIZE + (3,)
    table = _value(out[app.ranking])
    assert [row[0] for row in table["data"]] == [1, 2, 3]
    assert sorted(row[1] for row in table["data"]) == ["AinnoSeg", "DANet", "HRNet"]
    assert table["headers"][2] == "mIoU %"
    assert _visible(out[app.truth_picture]) and "Boundary IoU band" in _value(
        out[app.disagreement_text])


def test_multi_scale_predicts_as_segment_image_does_with_the_demos_scales(demo, files):
    app, client = demo
    out = _named(app, _segment(client, files["image"], multiscale=True))
    pixels = read_picture(files["image"])
    model = app.STORE.models("synthetic")["AinnoSeg"]
    labels = segment_image(model, pixels, scales=app.SCALES, flip=True).numpy()
    expected = compare.prediction_picture(pixels, labels, model.palette, 0.5)
    assert np.array_equal(read_picture(out[app.slots[2].picture]), expected)
    slider, changed, text = client.predict(
        handle_file(str(files["image"])), None, "synthetic", None, "HRNet", 0.5, False,
        api_name="/compare_scales")
    assert [read_picture(path).shape for path in _value(slider)] == [SIZE + (3,)] * 2
    assert read_picture(changed).shape == SIZE + (3,) and "changed label" in text


def test_an_added_checkpoint_is_a_fourth_column(demo, files):
    app, client = demo
    out = _named(app, _segment(client, files["image"], extra=files["mine"]))
    assert out[app.slots[3].caption].startswith("**Your checkpoint** `hrnetv2_w18s.pt`")
    assert read_picture(out[app.slots[3].picture]).shape == SIZE + (3,)
    assert "five_classes.pt predicts 5 classes but the synthetic models predict 11" in _status(
        app, _segment(client, files["image"], extra=files["five"]))
    assert re.search("notes.pt is not an ainnoseg checkpoint|cannot read checkpoint notes.pt",
                     _status(app, _segment(client, files["image"], extra=files["notes"])))


@pytest.mark.parametrize("name, note", [("grey", "grayscale"), ("rgba", "transparency"),
                                        ("deep", "16-bit"),
                                        ("huge", "240 x 192 pixels: resized to 128 x 102")])
def test_grayscale_rgba_16_bit_and_huge_images_are_converted_with_a_note(demo, files, name,
                                                                         note):
    app, client = demo
    out = _named(app, _segment(client, files[name]))
    assert note in out[app.notes]
    size = (102, 128) if name == "huge" else SIZE
    assert read_picture(out[app.slots[0].picture]).shape == size + (3,)


def test_a_mask_for_a_resized_image_is_resized_with_it(demo, files):
    app, client = demo
    big_mask = files["huge"].with_name("huge_mask.png")
    Image.fromarray(np.tile(np.asarray(Image.open(files["mask"])), (3, 3))).save(big_mask)
    out = _named(app, _segment(client, files["huge"], big_mask))
    assert read_picture(_value(out[app.slots[0].errors])).shape == (102, 128, 3)


@pytest.mark.parametrize("image, mask, message", [
    (None, None, "No image: upload one"),
    ("broken", None, "broken.png is not an image file that can be read"),
    ("tiny", None, "24 x 20 pixels, smaller than the networks' stride of 32"),
    ("image", "narrow_mask", "narrow_mask.png is 79 x 64 pixels but the image scene.png is "
                             "80 x 64"),
    ("image", "label_11_mask", "holds labels 11, but these models know 11 classes"),
    ("image", "broken", "the mask broken.png cannot be read"),
])
def test_bad_input_gets_a_message_saying_what_to_do(demo, files, image, mask, message):
    app, client = demo
    status = _status(app, _segment(client, image and files[image], mask and files[mask]))
    assert status.startswith("**Not segmented:** ") and re.search(message, status), status


def test_two_requests_at_once_each_get_their_own_result(demo, files):
    app, client = demo
    upload = (lambda path: handle_file(str(path)))
    jobs = [client.submit(upload(files[name]), None, "synthetic", None, False, 0.5, False, True,
                          api_name="/segment") for name in ("image", "other")]
    first, second = (_named(app, job.result(timeout=300)) for job in jobs)
    assert read_picture(first[app.slots[1].picture]).shape == SIZE + (3,)
    assert read_picture(second[app.slots[1].picture]).shape == (72, 96, 3)
    assert "scene.png" in first[app.notes] and "other.png" in second[app.notes]
