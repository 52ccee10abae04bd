"""The demo tells which images its models are for, runs an example with the
models trained on its kind of image, and keeps a bad input's message on the
page with the old results cleared.

Two test release sets (`demo_helpers`, random weights): synthetic with the
three families, and camvid with HRNet alone; a one-frame CamVid folder gives
a CamVid example.
"""

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[demo]')")
client_module = pytest.importorskip("gradio_client", reason="gradio_client is not installed")

from demo_helpers import (demo_settings, running_demo, write_release_set,  # noqa: E402
                          write_scene)

from ainnoseg.checkpoints.sets import ModelStore  # noqa: E402

SIZE = (64, 80)
ARGS = (None, False, 0.5, False, True)  # extra checkpoint, multi-scale, opacity, outlines, map


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sets")
    releases = write_release_set(tmp / "releases")
    write_release_set(releases, "camvid", ("hrnetv2_w18s",))
    camvid = tmp / "camvid"
    for folder in ("val", "valannot"):
        (camvid / folder).mkdir(parents=True)
    image, mask = write_scene(tmp / "street.png", SIZE)
    Image.open(image).save(camvid / "val" / "0016E5_07959.png")
    Image.fromarray(np.zeros(SIZE, np.uint8)).save(camvid / "valannot" / "0016E5_07959.png")
    (tmp / "broken.png").write_bytes(b"\x89PNG this is not an image")
    return {"store": ModelStore(releases), "camvid": camvid, "image": image, "mask": mask,
            "broken": tmp / "broken.png"}


def _settings(files):
    return demo_settings(STORE=files["store"], CAMVID=files["camvid"])


def test_choosing_a_set_shows_its_card_under_the_choice(files):
    with _settings(files) as app:
        card = app.set_changed("synthetic")[0]
        assert "**The synthetic models**, small and trained on synthetic alone" in card
        assert "`synthetic/danet_r18`" in card and "**Works on**" in card
        assert "**Elsewhere** expect wrong labels" in card
        sets, _, _, note, *_ = app.page_setup()
        assert sets.value == "synthetic" and note == card


def test_an_example_runs_the_set_trained_on_its_kind_of_image(files):
    with _settings(files) as app:
        found = app.demo_examples()
        sources = [example["source"] for example in found]
        camvid = sources.index("camvid")
        image, mask, chosen = app.pick_example(camvid, "synthetic")
        assert image.endswith("0016E5_07959.png") and mask and chosen == "camvid"
        assert app.pick_example(0, "camvid")[2] == "synthetic"
        assert app.page_setup()[2].raw_samples == [[str(e["image"])] for e in found]
    with demo_settings(STORE=ModelStore(files["store"].root / "none"),
                       CAMVID=files["camvid"]) as app:
        assert app.pick_example(camvid, "synthetic")[2] == "synthetic"  # no CamVid release


def test_the_example_click_sets_the_model_set_before_segmenting(files):
    with _settings(files) as app:
        picks = [fn for fn in app.demo.fns.values() if fn.fn is app.pick_example]
        assert len(picks) == 1 and app.model_set in picks[0].outputs


def test_an_upload_gets_a_note_on_what_the_models_were_trained_for(files):
    with _settings(files) as app:
        out = app.on_segment(str(files["image"]), None, "synthetic", *ARGS)
        assert ("**Note:** These synthetic models were trained on synthetic only and work on "
                "images like the synthetic val images") in out[app.notes]
        example = app.demo_examples()[0]
        out = app.on_segment(str(example["image"]), str(example["mask"]), "synthetic", *ARGS)
        assert "**Note:**" not in out[app.notes]
        frame = files["camvid"] / "val" / "0016E5_07959.png"
        assert "These synthetic models" in app.on_segment(str(frame), None, "synthetic",
                                                          *ARGS)[app.notes]
        assert "**Note:**" not in app.on_segment(str(frame), None, "camvid", *ARGS)[app.notes]


def test_a_bad_input_clears_every_output_and_leaves_its_message_on_the_page(files):
    with _settings(files) as app:
        out = app.on_segment({"path": str(files["broken"]), "orig_name": "photo.png"}, None,
                             "synthetic", *ARGS)
        assert out[app.status].startswith("**Not segmented:** photo.png is not an image file")
        shown = [c for c in app.segment_outputs if not isinstance(c, gr.Column)]
        assert set(out) == set(shown)
        assert all(out[c] is None for c in shown if c is not app.status)
        good = app.on_segment(str(files["image"]), None, "synthetic", *ARGS)
        assert good[app.status] == "" and good[app.slots[0].picture].shape == SIZE + (3,)
        out = app.on_compare_scales(None, None, "synthetic", None, "HRNet", 0.5, False)
        assert out[app.scale_slider] is None and out[app.scale_changed] is None
        assert out[app.scale_text].startswith("**Not compared:** No image: upload one")


def test_the_checkpoint_box_has_the_whole_width(files):
    with _settings(files) as app:
        row = app.extra_input.parent
        assert isinstance(row, gr.Row) and row.parent is app.demo
        assert app.model_set.parent is not row


def test_through_the_api_a_bad_request_is_a_message_and_the_next_one_clears_it(files):
    handle_file = client_module.handle_file
    with running_demo(STORE=files["store"], CAMVID=None, MAX_SIDE=128) as (app, url):
        client = client_module.Client(url, verbose=False)
        shown = [c for c in app.segment_outputs if not isinstance(c, (gr.State, gr.Column))]

        def segment(path):
            result = client.predict(handle_file(str(path)), None, "synthetic", *ARGS,
                                    api_name="/segment")
            return dict(zip(shown, result))

        failed = segment(files["broken"])
        assert "**Not segmented:** broken.png is not an image file" in failed[app.status]
        assert failed[app.slots[0].picture] is None and not failed[app.notes]
        done = segment(files["image"])
        assert done[app.status] == "" and done[app.slots[0].picture]
