"""The Gradio demo (app/demo.py, its handlers in app/demo_handlers.py): the
handlers as plain functions, the page built from its settings, then the
running demo driven through `gradio_client`: the columns with and without a
mask, multi-scale, an added checkpoint, every bad input (a message left on the
page), two requests at once.

The model set is three random-weight checkpoints (`demo_helpers`), so the
tests need neither the synthetic zoo nor CamVid; images are 64 x 80 scenes.
"""

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[demo]')")
client_module = pytest.importorskip("gradio_client", reason="gradio_client is not installed")

from demo_helpers import (load_demo, load_handlers, read_picture, running_demo,  # noqa: E402
                          shown_outputs, write_checkpoint, write_release_set, write_scene)

from ainnoseg.analysis import compare  # noqa: E402
from ainnoseg.checkpoints.sets import ModelStore  # noqa: E402
from ainnoseg.data import read_mask  # noqa: E402
from ainnoseg.inference import segment_image  # noqa: E402

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
def handlers():
    return load_handlers()


@pytest.fixture(scope="module")
def settings(store, handlers):
    """The page's settings for the test release set, without CamVid."""
    return handlers.Settings(store=store, camvid=None, max_side=128)


@pytest.fixture(scope="module")
def client(settings):
    """A client of the demo running with the test release set."""
    with running_demo(settings) as url:
        yield Client(url, verbose=False)


def _segment(client, image, mask=None, extra=None, multiscale=False, opacity=0.5,
             boundaries_only=False, disagreement=True):
    upload = (lambda path: None if path is None else handle_file(str(path)))
    return client.predict(upload(image), upload(mask), "synthetic", upload(extra), multiscale,
                          opacity, boundaries_only, disagreement, api_name="/segment")


def _status(result):
    """The message a request left on the page (the status above the results)."""
    return _named(result)["status"]


def _named(result):
    """{output name: returned value} (the API leaves out the state and columns)."""
    shown = shown_outputs(load_handlers().SEGMENT_OUTPUTS)
    assert len(shown) == len(result)
    return dict(zip(shown, result))


def _value(returned):
    return returned.get("value") if isinstance(returned, dict) else returned


def _visible(returned):
    return returned.get("visible", True) if isinstance(returned, dict) else True


def test_file_values_are_paths_or_the_dicts_events_get_unprocessed(handlers):
    assert handlers._file(None) == (None, None)
    assert handlers._file("/tmp/x/a.png") == ("/tmp/x/a.png", "a.png")
    assert handlers._file({"path": "/tmp/x/b", "orig_name": "street.png"}) == (
        "/tmp/x/b", "street.png")
    with pytest.raises(gr.Error, match="did not arrive"):
        handlers._file({"path": None})


def test_the_handlers_segment_redraw_and_compare_scales(files, handlers, settings):
    out = handlers.segment(settings, str(files["image"]), None, "synthetic", None, False, 0.5,
                           False, True)
    pictures = [out[f"{slot} picture"] for slot in ("HRNet", "DANet", "AinnoSeg")]
    assert all(picture.shape == SIZE + (3,) for picture in pictures)
    assert "**DANet** `synthetic/danet_r18`" in out["DANet caption"]
    assert out["ranking"].visible is False and out["Your checkpoint column"].visible is False
    assert set(out) <= set(handlers.SEGMENT_OUTPUTS)
    outlines = handlers.redraw(out["state"], 0.5, True, True)
    assert not np.array_equal(outlines["HRNet picture"], pictures[0])
    assert handlers.redraw(None, 0.5, True, True) == {}
    slider, changed, text = handlers.compare_scales(
        settings, str(files["image"]), str(files["mask"]), "synthetic", None, "AinnoSeg", 0.5,
        False)
    assert [picture.shape for picture in slider] == [SIZE + (3,)] * 2
    assert changed.shape == SIZE + (3,) and "mIoU" in text and "(0.75, 1, 1.25)" in text


def test_the_handlers_set_up_the_page_and_pick_examples(handlers, settings):
    note, models, *columns = handlers.set_changed(settings, "synthetic")
    assert note.startswith("**The synthetic models**")  # the set's card, none missing
    assert models.choices == [(f, f) for f in ("HRNet", "DANet", "AinnoSeg")]
    assert [column.visible for column in columns] == [True, True, True, False]
    sets, example_list, note, *_ = handlers.page_setup(settings)
    assert sets.value == "synthetic"
    samples = example_list.raw_samples
    assert len(samples) == len(handlers.demo_examples(settings)) >= 3
    assert "synthetic_val_" in samples[0][0]
    image, mask, chosen = handlers.pick_example(settings, 0, "synthetic")
    assert image == samples[0][0] and mask.endswith(".png") and chosen == "synthetic"
    assert "0.75, 1, 1.25" in handlers.scales_label(settings.scales)


def test_the_page_is_built_from_its_settings_without_globals(handlers, settings):
    """Two pages with different settings side by side: each shows its own."""
    app = load_demo()
    for scales in ((0.5, 1.0), (1.0, 2.0)):
        page = app.build_demo(handlers.Settings(store=settings.store, camvid=None,
                                                scales=scales))
        labels = [block.label for block in page.blocks.values()
                  if isinstance(block, gr.Checkbox)]
        assert handlers.scales_label(scales) in labels
    assert isinstance(app.demo, gr.Blocks)


def test_the_command_line_binds_to_localhost_unless_told_otherwise(monkeypatch, tmp_path):
    app = load_demo()
    launched = []
    monkeypatch.setattr(gr.Blocks, "launch",
                        lambda self, **options: launched.append(options))
    app.main([])
    assert launched[-1]["server_name"] == "127.0.0.1" and launched[-1]["share"] is False
    assert launched[-1]["server_port"] == 7860
    arguments = ["--host", "0.0.0.0", "--port", "8080", "--share", "--camvid", str(tmp_path),
                 "--scales", "0.5", "1", "--max-side", "320", "--releases", str(tmp_path)]
    app.main(arguments)
    assert launched[-1]["server_name"] == "0.0.0.0" and launched[-1]["share"] is True
    assert str(tmp_path) in launched[-1]["allowed_paths"]
    settings = app.settings_of(app.parse_args(arguments))
    assert (settings.camvid, settings.scales, settings.max_side) == (tmp_path, (0.5, 1.0), 320)
    assert settings.store.root == tmp_path
    with pytest.raises(SystemExit):
        app.parse_args(["--camvid", str(tmp_path / "none")])
    with pytest.raises(SystemExit):
        app.parse_args(["--scales", "0"])


def test_the_examples_are_the_synthetic_scenes_then_the_camvid_frames(tmp_path, handlers):
    camvid = tmp_path / "camvid"
    for folder in ("val", "valannot"):
        (camvid / folder).mkdir(parents=True)
    Image.fromarray(np.zeros((64, 80, 3), np.uint8)).save(camvid / "val" / "f0.png")
    Image.fromarray(np.zeros((64, 80), np.uint8)).save(camvid / "valannot" / "f0.png")
    settings = handlers.Settings(camvid=camvid)
    found = handlers.demo_examples(settings)
    assert found[0]["source"] == "synthetic" and found[-1]["name"] == "camvid f0"
    assert handlers.pick_example(settings, len(found) - 1, "synthetic")[0] == str(
        camvid / "val" / "f0.png")


def test_three_columns_without_a_mask_show_predictions_times_and_parameters(client, files):
    out = _named(_segment(client, files["image"]))
    for name in ("HRNet", "DANet", "AinnoSeg"):
        assert read_picture(out[f"{name} picture"]).shape == SIZE + (3,)
        caption = out[f"{name} caption"]
        assert caption.startswith(f"**{name}** `synthetic/") and "s on this machine" in caption
        assert "M parameters" in caption and "mIoU" not in caption
        assert not _visible(out[f"{name} errors"])
    assert not _visible(out["ranking"]) and not _visible(out["truth"])
    assert read_picture(_value(out["disagreement"])).shape == SIZE + (3,)
    assert "The 3 models give different labels" in _value(out["disagreement_text"])
    assert "scene.png**, 80 x 64 pixels" in out["notes"]
    assert read_picture(out["legend"]).shape[0] > 100  # 11 classes


def test_with_a_mask_each_column_adds_scores_and_errors_and_a_table_ranks_them(client, files):
    out = _named(_segment(client, files["image"], files["mask"]))
    for name in ("HRNet", "DANet", "AinnoSeg"):
        assert "mIoU" in out[f"{name} caption"] and "boundary F" in out[f"{name} caption"]
        errors = read_picture(_value(out[f"{name} errors"]))
        assert _visible(out[f"{name} errors"]) and errors.shape == SIZE + (3,)
    table = _value(out["ranking"])
    assert [row[0] for row in table["data"]] == [1, 2, 3]
    assert sorted(row[1] for row in table["data"]) == ["AinnoSeg", "DANet", "HRNet"]
    assert table["headers"][2] == "mIoU %"
    assert _visible(out["truth"]) and "Boundary IoU band" in _value(out["disagreement_text"])


def test_multi_scale_predicts_as_segment_image_does_with_the_demos_scales(client, files,
                                                                           settings):
    out = _named(_segment(client, files["image"], multiscale=True))
    pixels = read_picture(files["image"])
    model = settings.store.models("synthetic")["AinnoSeg"]
    labels = segment_image(model, pixels, scales=settings.scales, flip=True).numpy()
    expected = compare.prediction_picture(pixels, labels, model.meta.palette, 0.5)
    assert np.array_equal(read_picture(out["AinnoSeg picture"]), expected)
    slider, changed, text = client.predict(
        handle_file(str(files["image"])), None, "synthetic", None, "HRNet", 0.5, False,
        api_name="/compare_scales")
    assert [read_picture(path).shape for path in _value(slider)] == [SIZE + (3,)] * 2
    assert read_picture(changed).shape == SIZE + (3,) and "changed label" in text


def test_an_added_checkpoint_is_a_fourth_column(client, files):
    out = _named(_segment(client, files["image"], extra=files["mine"]))
    assert out["Your checkpoint caption"].startswith("**Your checkpoint** `hrnetv2_w18s.pt`")
    assert read_picture(out["Your checkpoint picture"]).shape == SIZE + (3,)
    assert "five_classes.pt predicts 5 classes but the synthetic models predict 11" in _status(
        _segment(client, files["image"], extra=files["five"]))
    assert re.search("notes.pt is not an ainnoseg checkpoint|cannot read checkpoint notes.pt",
                     _status(_segment(client, files["image"], extra=files["notes"])))


@pytest.mark.parametrize("name, note", [("grey", "grayscale"), ("rgba", "transparency"),
                                        ("deep", "16-bit"),
                                        ("huge", "240 x 192 pixels: resized to 128 x 102")])
def test_grayscale_rgba_16_bit_and_huge_images_are_converted_with_a_note(client, files, name,
                                                                         note):
    out = _named(_segment(client, files[name]))
    assert note in out["notes"]
    size = (102, 128) if name == "huge" else SIZE
    assert read_picture(out["HRNet picture"]).shape == size + (3,)


def test_a_mask_for_a_resized_image_is_resized_with_it(client, files):
    big_mask = files["huge"].with_name("huge_mask.png")
    Image.fromarray(np.tile(np.asarray(Image.open(files["mask"])), (3, 3))).save(big_mask)
    out = _named(_segment(client, files["huge"], big_mask))
    assert read_picture(_value(out["HRNet errors"])).shape == (102, 128, 3)


@pytest.mark.parametrize("image, mask, message", [
    (None, None, "No image: upload one"),
    ("broken", None, "broken.png is not an image file that can be read"),
    ("tiny", None, "24 x 20 pixels, smaller than the networks' stride of 32"),
    ("image", "narrow_mask", "narrow_mask.png is 79 x 64 pixels but the image scene.png is "
                             "80 x 64"),
    ("image", "label_11_mask", "holds labels 11, but these models know 11 classes"),
    ("image", "broken", "the mask broken.png cannot be read"),
])
def test_bad_input_gets_a_message_saying_what_to_do(client, files, image, mask, message):
    status = _status(_segment(client, image and files[image], mask and files[mask]))
    assert status.startswith("**Not segmented:** ") and re.search(message, status), status


def test_two_requests_at_once_each_get_their_own_result(client, files):
    upload = (lambda path: handle_file(str(path)))
    jobs = [client.submit(upload(files[name]), None, "synthetic", None, False, 0.5, False, True,
                          api_name="/segment") for name in ("image", "other")]
    first, second = (_named(job.result(timeout=300)) for job in jobs)
    assert read_picture(first["DANet picture"]).shape == SIZE + (3,)
    assert read_picture(second["DANet picture"]).shape == (72, 96, 3)
    assert "scene.png" in first["notes"] and "other.png" in second["notes"]


def test_segmenting_offers_each_models_label_map_overlay_and_the_scores(client, files):
    out = _named(_segment(client, files["image"], files["mask"]))
    assert _visible(out["downloads"])
    paths = [Path(item["path"] if isinstance(item, dict) else item)
             for item in _value(out["downloads"])]
    names = sorted(path.name for path in paths)
    assert names == sorted([f"scene_{m}_{part}.png" for m in ("HRNet", "DANet", "AinnoSeg")
                            for part in ("labels", "overlay")] + ["scene_scores.csv"])
    by_name = {path.name: path for path in paths}
    labels = read_mask(by_name["scene_HRNet_labels.png"]).numpy()
    assert labels.shape == SIZE and labels.max() < 11
    assert read_picture(by_name["scene_AinnoSeg_overlay.png"]).shape == SIZE + (3,)
    scores = by_name["scene_scores.csv"].read_text().splitlines()
    assert scores[0].startswith("image,name,model,seconds,") and "mean_iou" in scores[0]
    assert len(scores) == 4  # a header and a row per model
    without_mask = _named(_segment(client, files["image"]))
    assert not any(str(_value(item)).endswith(".csv") for item in _value(
        without_mask["downloads"]))


def test_the_downloads_folder_keeps_only_the_latest_requests(files, handlers, settings):
    for _ in range(handlers.KEPT_DOWNLOADS + 2):
        handlers.segment(settings, str(files["image"]), None, "synthetic", None, False, 0.5,
                         False, True)
    assert len(list(handlers.downloads_root().iterdir())) == handlers.KEPT_DOWNLOADS
