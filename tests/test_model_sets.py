"""`ainnoseg.checkpoints.sets`: the demo's HRNet, DANet and AinnoSeg sets from the
release manifests, and models loaded once and shared."""

import json
import os
import shutil
import threading

import pytest

import ainnoseg
from ainnoseg.checkpoints.files import CheckpointError
from ainnoseg.checkpoints.released import RELEASES_DIR
from ainnoseg.checkpoints.sets import (FAMILIES, ModelStore, default_set, family_of, missing_note,
                                       model_sets)


def _release(name, model):
    return {"name": name, "dataset": name.split("/")[0], "model": model}


def test_sets_take_one_release_per_family_preferring_the_plain_one():
    releases = [_release("camvid/hrnetv2_w18s", "hrnetv2_w18s"),
                _release("camvid/ocrnet_hrnet_w18s", "ocrnet_hrnet_w18s"),
                _release("camvid/ainnoseg_w18s_selftrain_round1", "ainnoseg_w18s"),
                _release("camvid/ainnoseg_w18s", "ainnoseg_w18s"),
                _release("camvid/ainnoseg_w18s_selftrain_round2", "ainnoseg_w18s"),
                _release("synthetic/danet_r18", "danet_r18"),
                _release("synthetic/hrnetv2_w18s", "hrnetv2_w18s")]
    sets = model_sets(releases)
    assert sets == {"camvid": {"HRNet": "camvid/hrnetv2_w18s", "AinnoSeg": "camvid/ainnoseg_w18s"},
                    "synthetic": {"HRNet": "synthetic/hrnetv2_w18s",
                                  "DANet": "synthetic/danet_r18"}}
    assert list(sets["synthetic"]) == ["HRNet", "DANet"]  # in FAMILIES order
    only_rounds = model_sets([_release("x/ainnoseg_w18s_round1", "ainnoseg_w18s"),
                              _release("x/ainnoseg_w18s_round2", "ainnoseg_w18s")])
    assert only_rounds == {"x": {"AinnoSeg": "x/ainnoseg_w18s_round1"}}


def test_families_the_default_set_and_the_note_on_a_missing_family():
    assert [family_of(m) for m in ("hrnetv2_w48", "danet_r101", "ainnoseg_w18s",
                                   "ocrnet_hrnet_w18s", "hrnet_da_w18s")] == \
        ["HRNet", "DANet", "AinnoSeg", None, None]
    assert default_set({"camvid": {}, "synthetic": {}}) == "synthetic"
    assert default_set({"camvid": {}, "ade20k": {}}) == "camvid"
    assert default_set({"b": {}, "a": {}}) == "a" and default_set({}) is None
    assert missing_note("camvid", {"HRNet": 1, "AinnoSeg": 2}) == (
        "The camvid set has no DANet release yet, so it shows HRNet and AinnoSeg.")
    assert missing_note("synthetic", dict.fromkeys(FAMILIES)) == ""


def test_the_released_sets_include_camvid_with_its_families():
    sets = model_sets(ainnoseg.list_released())
    assert set(sets["camvid"]) == set(FAMILIES)  # HRNet, DANet and AinnoSeg
    for dataset, families in sets.items():
        for family, name in families.items():
            assert name.startswith(f"{dataset}/") and family_of(name.split("/")[1]) == family


@pytest.fixture
def one_release(tmp_path):
    """A release folder holding camvid/hrnetv2_w18s alone."""
    folder = tmp_path / "camvid"
    folder.mkdir()
    shutil.copy(RELEASES_DIR / "camvid" / "hrnetv2_w18s.pt", folder)
    manifest = json.loads((RELEASES_DIR / "camvid" / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({"hrnetv2_w18s": manifest["hrnetv2_w18s"]}))
    return tmp_path


def test_a_model_loads_once_and_is_shared_across_threads(one_release):
    store = ModelStore(one_release)
    assert store.sets() == {"camvid": {"HRNet": "camvid/hrnetv2_w18s"}}
    found = []
    threads = [threading.Thread(target=lambda: found.append(store.models("camvid")["HRNet"]))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 3 and all(model is found[0] for model in found)
    assert found[0].meta.name == "camvid/hrnetv2_w18s" and not found[0].training


def test_files_load_again_when_they_change_and_only_the_latest_are_kept(one_release):
    store = ModelStore(one_release, max_files=1)
    path = one_release / "camvid" / "hrnetv2_w18s.pt"
    copy = shutil.copy(path, one_release / "copy.pt")
    first = store.file(copy)
    assert store.file(copy) is first
    os.utime(copy, ns=(1, 1))  # a new modification time: a new file
    second = store.file(copy)
    assert second is not first and store.file(copy) is second
    store.file(path)
    assert len(store._files) == 1  # the copy was dropped for the latest file
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        store.file(one_release / "missing.pt")
    with pytest.raises(CheckpointError, match="no model set 'synthetic'; the released sets are "
                                              "camvid"):
        store.models("synthetic")
    with pytest.raises(CheckpointError, match="no released model 'camvid/danet_r18'"):
        store.release("camvid/danet_r18")
