"""`ainnoseg.list_released` and `ainnoseg.load` of a released name or a file."""

import json
import shutil

import pytest
import torch

import ainnoseg
from ainnoseg.checkpoints.files import CheckpointError, save_checkpoint
from ainnoseg.checkpoints.released import RELEASES_DIR


def test_every_manifest_entry_is_listed_with_its_file_and_scores():
    releases = ainnoseg.list_released()
    manifests = {path.parent.name: json.loads(path.read_text())
                 for path in RELEASES_DIR.glob("*/manifest.json")}
    assert [r["name"] for r in releases] == [
        f"{dataset}/{key}" for dataset in sorted(manifests) for key in manifests[dataset]]
    for release in releases:
        entry = manifests[release["dataset"]][release["name"].split("/", 1)[1]]
        assert release["path"].is_file() and release["model"] == entry["model"]
        assert release["mean_iou"] == round(100 * entry["val"]["single_scale"]["mean_iou"], 2)
        assert 0 < release["megabytes"] < 50


def test_a_released_name_loads_its_model_with_classes_palette_and_manifest():
    model = ainnoseg.load("camvid/hrnetv2_w18s")
    entry = json.loads((RELEASES_DIR / "camvid" / "manifest.json").read_text())["hrnetv2_w18s"]
    meta = model.meta
    assert meta.name == "camvid/hrnetv2_w18s" and meta.release == entry
    assert meta.class_names == entry["class_names"] and len(meta.palette) == 11
    assert meta.config["model"] == "hrnetv2_w18s" and not model.training
    assert meta.checkpoint_path == RELEASES_DIR / "camvid" / "hrnetv2_w18s.pt"
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_an_unknown_name_lists_the_released_ones_and_a_bare_model_name_gets_a_hint():
    with pytest.raises(CheckpointError, match="released models: .*camvid/hrnetv2_w18s"):
        ainnoseg.load("camvid/no_such_model")
    with pytest.raises(CheckpointError, match="did you mean camvid/ocrnet_hrnet_w18s"):
        ainnoseg.load("ocrnet_hrnet_w18s")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        ainnoseg.load("runs/missing/best.pt")


def test_a_released_file_that_no_longer_matches_its_manifest_is_refused(tmp_path):
    shutil.copytree(RELEASES_DIR / "camvid", tmp_path / "camvid",
                    ignore=lambda folder, names: [n for n in names if n.endswith(".pt")
                                                  and n != "hrnetv2_w18s.pt"])
    path = tmp_path / "camvid" / "hrnetv2_w18s.pt"
    assert ainnoseg.load("camvid/hrnetv2_w18s", root=tmp_path).meta.class_names
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        ainnoseg.load("camvid/hrnetv2_w18s", root=tmp_path)
    path.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        ainnoseg.load("camvid/hrnetv2_w18s", root=tmp_path)


def test_a_released_file_also_loads_by_its_path_and_matches_the_named_load():
    by_name = ainnoseg.load("camvid/hrnetv2_w18s")
    by_path = ainnoseg.load(RELEASES_DIR / "camvid" / "hrnetv2_w18s.pt")
    assert by_path.meta.release is None
    assert by_path.meta.class_names == by_name.meta.class_names
    images = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(by_name(images)["out"], by_path(images)["out"])


def test_a_file_that_is_no_checkpoint_is_named_as_neither_checkpoint_nor_release(tmp_path):
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(CheckpointError, match=r"passwd: it is not a checkpoint .* nor a "
                                              r"released model's name; .*camvid/hrnetv2_w18s"):
        ainnoseg.load(passwd)


@pytest.mark.parametrize("config", ["model: hrnetv2_w18s", ["hrnetv2_w18s"]])
def test_a_checkpoint_whose_config_is_not_a_dict_is_refused(tmp_path, config):
    path = tmp_path / "odd.pt"
    save_checkpoint({"model": {}, "config": config, "class_names": ["a", "b"]}, path)
    with pytest.raises(CheckpointError, match=rf"odd.pt holds its config as a "
                                              rf"{type(config).__name__}, not a dict"):
        ainnoseg.load(path)


def test_a_damaged_release_manifest_is_named(tmp_path):
    (tmp_path / "camvid").mkdir()
    (tmp_path / "camvid" / "manifest.json").write_text('{"a": ')
    with pytest.raises(CheckpointError, match="the release manifest .*manifest.json is not "
                                              "readable JSON"):
        ainnoseg.list_released(tmp_path)
