"""Model cards (`ainnoseg.checkpoints.cards`): what each release was trained on,
its budget and scores and the images it works on, in `list_released()` and
for any loaded model."""

import json

import pytest

import ainnoseg
from ainnoseg.checkpoints import cards as model_cards
from ainnoseg.checkpoints.files import save_checkpoint
from ainnoseg.checkpoints.released import RELEASES_DIR
from ainnoseg.data import examples
from ainnoseg.registry import build_model

RELEASES = {release["name"]: release for release in ainnoseg.list_released()}


def test_every_release_says_what_it_works_on_in_its_manifest():
    for path in RELEASES_DIR.glob("*/manifest.json"):
        for key, entry in json.loads(path.read_text()).items():
            assert len(entry.get("works_on", "")) > 40, f"{path}: {key} has no works_on"
            assert entry.get("limits", "").startswith("expect"), f"{path}: {key} has no limits"


def test_list_released_gives_each_release_its_card_and_works_on():
    for name, release in RELEASES.items():
        assert release["works_on"] == release["entry"]["works_on"]
        assert release["card"] == model_cards.model_card(release)
        assert release["card"].startswith(f"**{name}** ({release['model']}): ")


def test_a_camvid_card_gives_data_budget_scores_and_the_images_it_is_for():
    card = RELEASES["camvid/ainnoseg_w18s"]["card"]
    assert ("from scratch on camvid train: 4600 iterations, in batches of 8 crops of "
            "256 x 320.") in card
    mean_iou = RELEASES["camvid/ainnoseg_w18s"]["mean_iou"]
    assert f"Val mIoU {mean_iou:.1f} % (" in card and "multi-scale + flip), Boundary IoU" in card
    assert "**Works on** CamVid-like dashcam frames" in card and "360 x 480" in card
    assert "**Elsewhere** expect scores far below val on other streets" in card


def test_a_synthetic_card_says_it_is_for_the_drawn_scenes():
    card = RELEASES["synthetic/danet_r18"]["card"]
    assert ("fine-tuned from the camvid/danet_r18 release on synthetic train: 2000 iterations"
            in card)
    assert "procedural street scenes" in card and "mIoU on CamVid val" in card


def test_a_self_training_round_says_how_its_round_was_trained():
    card = RELEASES["camvid/ainnoseg_w18s_selftrain_round2"]["card"]
    assert ("self-training round 2 from its teacher: 460 iterations on camvid train and "
            "pseudo-labels of 233 unlabelled images, then 230 on camvid train alone") in card


def test_an_entry_that_says_little_gets_a_card_from_its_dataset():
    release = {"name": "pets/hrnetv2_w18s", "dataset": "pets", "entry": {"model": "hrnetv2_w18s"}}
    card = model_cards.model_card(release)
    assert card.startswith("**pets/hrnetv2_w18s** (hrnetv2_w18s): trained on pets.")
    assert "**Works on** images like the pets val images the model was scored on." in card
    assert "**Elsewhere** expect wrong labels and far lower scores" in card
    pretrained = dict(release, entry={"config": {"pretrained": True, "iterations": 80}})
    assert model_cards.budget(pretrained) == "from ImageNet weights on pets train: 80 iterations"
    from_release = dict(release, entry={"config": {
        "init_checkpoint": "assets/checkpoints/camvid/hrnetv2_w18s.pt", "iterations": 80}})
    assert (model_cards.budget(from_release)
            == "fine-tuned from the camvid/hrnetv2_w18s release on pets train: 80 iterations")
    from_file = dict(release, entry={"config": {"init_checkpoint": "/runs/a/best.pt"}})
    assert model_cards.budget(from_file) == "fine-tuned from best.pt on pets train"


def test_a_sets_card_lists_each_model_and_a_shared_budget_once():
    members = {"HRNet": RELEASES["camvid/hrnetv2_w18s"],
               "AinnoSeg": RELEASES["camvid/ainnoseg_w18s"]}
    card = model_cards.set_card("camvid", members)
    assert "- **HRNet** `camvid/hrnetv2_w18s`: val mIoU 62.2 %" in card
    assert card.count("4600 iterations") == 1 and "**Works on** CamVid-like" in card
    mixed = dict(members, AinnoSeg=RELEASES["camvid/ainnoseg_w18s_selftrain_round1"])
    mixed_card = model_cards.set_card("camvid", mixed)
    assert "**Training**" not in mixed_card and "self-training round 1" in mixed_card
    assert "`camvid/hrnetv2_w18s`: val mIoU 62.2 %; from scratch on camvid train" in mixed_card
    assert model_cards.set_card("camvid", {}) == ""


def test_other_images_notes_say_once_per_dataset_what_the_models_were_trained_for():
    notes = model_cards.other_images_notes(
        [RELEASES["camvid/hrnetv2_w18s"], RELEASES["camvid/ainnoseg_w18s"],
         RELEASES["synthetic/danet_r18"], {"name": "x.pt", "dataset": None, "entry": {}}])
    assert len(notes) == 2
    assert notes[0].startswith("These camvid models were trained for camvid and work on "
                               "CamVid-like dashcam frames")
    assert "; on other images expect people labelled Tree" in notes[0]
    assert notes[1].startswith("These synthetic models")


def _file(path, config):
    model = build_model("hrnetv2_w18s", num_classes=3)
    save_checkpoint({"model": model.state_dict(), "config": config,
                     "class_names": ["background", "cat", "dog"]}, path)
    return path


def test_a_loaded_model_gives_its_release_or_what_its_config_says(tmp_path):
    released = model_cards.release_of(ainnoseg.load("synthetic/hrnetv2_w18s"))
    assert released == {"name": "synthetic/hrnetv2_w18s", "dataset": "synthetic",
                        "entry": RELEASES["synthetic/hrnetv2_w18s"]["entry"]}
    mine = ainnoseg.load(_file(tmp_path / "pets.pt", {"model": "hrnetv2_w18s",
                                                      "data": "data/pets", "iterations": 50}))
    release = model_cards.release_of(mine)
    assert release["dataset"] == "pets" and release["name"] == str(tmp_path / "pets.pt")
    assert "from scratch on pets train: 50 iterations" in model_cards.model_card(release)
    bare = ainnoseg.load(_file(tmp_path / "bare.pt", {"model": "hrnetv2_w18s"}))
    assert model_cards.release_of(bare)["dataset"] is None
    assert model_cards.other_images_notes([model_cards.release_of(bare)]) == []


@pytest.mark.parametrize("name, source", [("synthetic_val_00002.png", "synthetic"),
                                          ("street.png", None)])
def test_source_of_tells_an_example_from_an_upload(name, source):
    assert examples.source_of(name) == source
