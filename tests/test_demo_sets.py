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

from demo_helpers import (load_demo, load_handlers, running_demo, shown_outputs,  # noqa: E402
                          write_release_set, write_scene)

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


@pytest.fixture(scope="module")
def handlers():
    return load_handlers()


@pytest.fixture(scope="module")
def settings(files, handlers):
    return handlers.Settings(store=files["store"], camvid=files["camvid"])


def _by_label(demo, kind, label):
    """The one component of `kind` labelled `label` on the page `demo`."""
    found = [block for block in demo.blocks.values()
             if isinstance(block, kind) and block.label == label]
    assert len(found) == 1, found
    return found[0]


def test_choosing_a_set_shows_its_card_under_the_choice(handlers, settings):
    card = handlers.set_changed(settings, "synthetic")[0]
    assert "**The synthetic models**, small and trained on synthetic alone" in card
    assert "`synthetic/danet_r18`" in card and "**Works on**" in card
    assert "**Elsewhere** expect wrong labels" in card
    sets, _, note, *_ = handlers.page_setup(settings)
    assert sets.value == "synthetic" and note == card


def test_an_example_runs_the_set_trained_on_its_kind_of_image(files, handlers, settings):
    found = handlers.demo_examples(settings)
    sources = [example["source"] for example in found]
    camvid = sources.index("camvid")
    image, mask, chosen = handlers.pick_example(settings, camvid, "synthetic")
    assert image.endswith("0016E5_07959.png") and mask and chosen == "camvid"
    assert handlers.pick_example(settings, 0, "camvid")[2] == "synthetic"
    assert handlers.page_setup(settings)[1].raw_samples == [[str(e["image"])] for e in found]
    unreleased = handlers.Settings(store=ModelStore(files["store"].root / "none"),
                                   camvid=files["camvid"])
    assert handlers.pick_example(unreleased, camvid, "synthetic")[2] == "synthetic"


def test_the_example_click_sets_the_model_set_before_segmenting(settings):
    demo = load_demo().build_demo(settings)
    picks = [fn for fn in demo.fns.values()
             if getattr(fn.fn, "__name__", None) == "pick_example"]
    assert len(picks) == 1
    assert _by_label(demo, gr.Dropdown, "Model set") in picks[0].outputs


def test_an_upload_gets_a_note_on_what_the_models_were_trained_for(files, handlers, settings):
    def notes(image, mask, set_name):
        return handlers.on_segment(settings, image, mask, set_name, *ARGS)["notes"]

    assert ("**Note:** These synthetic models were trained for synthetic and work on "
            "images like the synthetic val images") in notes(str(files["image"]), None,
                                                             "synthetic")
    example = handlers.demo_examples(settings)[0]
    assert "**Note:**" not in notes(str(example["image"]), str(example["mask"]), "synthetic")
    frame = str(files["camvid"] / "val" / "0016E5_07959.png")
    assert "These synthetic models" in notes(frame, None, "synthetic")
    assert "**Note:**" not in notes(frame, None, "camvid")


def test_a_bad_input_clears_every_output_and_leaves_its_message_on_the_page(files, handlers,
                                                                            settings):
    out = handlers.on_segment(settings, {"path": str(files["broken"]), "orig_name": "photo.png"},
                              None, "synthetic", *ARGS)
    assert out["status"].startswith("**Not segmented:** photo.png is not an image file")
    shown = [name for name in handlers.SEGMENT_OUTPUTS if not name.endswith(" column")]
    assert set(out) == set(shown)
    assert all(out[name] is None for name in shown if name != "status")
    good = handlers.on_segment(settings, str(files["image"]), None, "synthetic", *ARGS)
    assert good["status"] == "" and good["HRNet picture"].shape == SIZE + (3,)
    out = handlers.on_compare_scales(settings, None, None, "synthetic", None, "HRNet", 0.5,
                                     False)
    assert out["scale_slider"] is None and out["scale_changed"] is None
    assert out["scale_text"].startswith("**Not compared:** No image: upload one")


def test_the_checkpoint_box_has_the_whole_width(settings):
    demo = load_demo().build_demo(settings)
    row = _by_label(demo, gr.File, "Add a checkpoint (.pt) as a fourth column").parent
    assert isinstance(row, gr.Row) and row.parent is demo
    assert _by_label(demo, gr.Dropdown, "Model set").parent is not row


def test_through_the_api_a_bad_request_is_a_message_and_the_next_one_clears_it(files, handlers):
    handle_file = client_module.handle_file
    settings = handlers.Settings(store=files["store"], camvid=None, max_side=128)
    with running_demo(settings) as url:
        client = client_module.Client(url, verbose=False)
        shown = shown_outputs(handlers.SEGMENT_OUTPUTS)

        def segment(path):
            result = client.predict(handle_file(str(path)), None, "synthetic", *ARGS,
                                    api_name="/segment")
            return dict(zip(shown, result))

        failed = segment(files["broken"])
        assert "**Not segmented:** broken.png is not an image file" in failed["status"]
        assert failed["HRNet picture"] is None and not failed["notes"]
        done = segment(files["image"])
        assert done["status"] == "" and done["HRNet picture"]
