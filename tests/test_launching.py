from pathlib import Path

import pytest
from PIL import Image

from ainnoseg.config import ConfigError, load_config
from ainnoseg.runs.launching import (describe_data, find_datasets, fresh_run_name,
                                     launch_overrides, list_presets, parse_extra, run_dir)


def test_presets_are_the_config_files_with_their_kind_and_description():
    presets = {preset["name"]: preset for preset in list_presets()}
    assert presets["selftrain_synthetic_quick"]["kind"] == "selftrain"
    assert presets["synthetic_quick"]["kind"] == "train"
    assert presets["synthetic_quick"]["about"].startswith("A few minutes on a 2-core CPU")
    assert presets["synthetic_quick"]["values"]["data"] == "synthetic"
    assert list_presets("no/such/folder") == []


def test_form_values_become_overrides_the_config_reads_back():
    overrides = launch_overrides(data="my data: 2024", model="hrnetv2_w18s", iterations=5,
                                 rounds=1, threshold=0.9, student_data="labelled",
                                 extra=["lr=0.5"])
    config = load_config("configs/selftrain_synthetic_quick.yaml", overrides)
    assert config.data == "my data: 2024" and config.model == "hrnetv2_w18s"
    assert config.iterations == 5 and config.rounds == 1 and config.threshold == 0.9
    assert config.student_data == "labelled"
    assert config.lr == 0.5
    assert launch_overrides() == []


def test_extra_settings_are_one_key_value_a_line():
    assert parse_extra("lr=0.02\n\n  # a comment\nbatch_size=4  # small\n") == [
        "lr=0.02", "batch_size=4"]
    with pytest.raises(ConfigError, match="must look like key=value"):
        parse_extra("lr 0.02")


def test_a_run_name_is_one_folder_name():
    assert run_dir("runs", " mine ") == Path("runs") / "mine"
    for name in ("", "..", "a/b", "../escape"):
        with pytest.raises(ValueError, match="one folder name"):
            run_dir("runs", name)


def test_a_new_run_gets_the_first_name_not_taken(tmp_path):
    assert fresh_run_name(tmp_path, "quick") == "quick"
    (tmp_path / "quick").mkdir()
    (tmp_path / "quick_2").write_text("a file takes the name too")
    assert fresh_run_name(tmp_path, "quick") == "quick_3"


def test_a_broken_preset_is_listed_with_what_is_wrong(tmp_path):
    (tmp_path / "broken.yaml").write_text("model: [hrnetv2_w18s\nlr: 0.01\n")
    (preset,) = list_presets(tmp_path)
    assert preset["values"] == {} and "not valid YAML" in preset["about"]


def _folder_dataset(root):
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "images" / "a.png")
    Image.new("L", (8, 8)).save(root / "masks" / "a.png")
    (root / "classes.txt").write_text("background\nthing\n")


def test_describe_data_counts_splits_and_names_what_is_wrong(tmp_path):
    synthetic = describe_data("synthetic")
    assert synthetic["error"] is None and synthetic["splits"] == {"train": 400, "val": 100,
                                                                  "test": 100}
    assert describe_data(tmp_path / "missing")["error"].startswith("no dataset folder at")
    _folder_dataset(tmp_path / "mine")
    mine = describe_data(tmp_path / "mine")
    assert mine["layout"] == "folder" and mine["splits"]["train"] == 1
    assert mine["labelled"]["train"]
    (tmp_path / "empty").mkdir()
    assert "holds no readable split" in describe_data(tmp_path / "empty")["error"]


def test_find_datasets_lists_labelled_folders(tmp_path):
    _folder_dataset(tmp_path / "mine")
    (tmp_path / "just_images").mkdir()
    assert find_datasets([tmp_path, tmp_path / "missing"]) == [str(tmp_path / "mine")]
