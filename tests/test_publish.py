import json
import shlex

import pytest
import torch
import yaml

from ainnoseg.checkpoints.files import load_checkpoint
from ainnoseg.cli import main
from data_trees import stripes, write_image, write_mask

TINY = {
    "model": "hrnetv2_w18s", "crop_size": [64, 96], "scale": [96, 128],
    "ratio_range": [0.75, 1.25], "batch_size": 2, "workers": 0, "iterations": 2,
    "lr": 0.01, "eval_every": 2, "log_every": 1, "checkpoint_every": 1,
}


def _camvid_tree(root, height=64, width=96):
    """Two frames per split in CamVid's layout, large enough for the network's stride."""
    for split in ("train", "val"):
        for index in range(2):
            name = f"0001TP_{index:06d}.png"
            write_image(root / split / name, height, width, seed=index)
            write_mask(root / f"{split}annot" / name, stripes(height, width, values=(0, 3, 8)))
    return root


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = tmp_path_factory.mktemp("publish")
    data = _camvid_tree(root / "camvid")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "data": str(data), "run_dir": str(root / "run")}))
    with pytest.raises(SystemExit) as done:
        main(["train", str(config)])
    assert done.value.code == 0
    with pytest.raises(SystemExit) as done:
        main(["publish", str(root / "run"), "--out", str(root / "release"), "--name", "tiny",
              "--ms-scales", "0.75", "1.0", "--command", f"ainnoseg train {config}",
              "--trained-on", "another machine", "--note", "frames read as JPEG copies"])
    assert done.value.code == 0
    return root


def test_weights_are_half_precision_without_training_state(published):
    state = load_checkpoint(published / "release" / "tiny.pt")
    assert "optimizer" not in state and "rng" not in state
    floats = [v for v in state["model"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)


def test_manifest_records_how_the_weights_were_made(published):
    entry = json.loads((published / "release" / "manifest.json").read_text())["tiny"]
    assert entry["file"] == "tiny.pt" and len(entry["sha256"]) == 64
    assert entry["model"] == "hrnetv2_w18s" and entry["iterations"] == 2
    assert entry["best_step"] == 2 and entry["wall_time_hours"] >= 0
    assert entry["command"].startswith("ainnoseg train")
    assert entry["hardware"] == "another machine" and entry["scored_on"] not in ("", entry["hardware"])
    assert entry["note"] == "frames read as JPEG copies"
    assert entry["config"]["crop_size"] == [64, 96]
    single, multi = entry["val"]["single_scale"], entry["val"]["multi_scale_flip"]
    assert single["scales"] == [1.0] and not single["flip"]
    assert multi["scales"] == [0.75, 1.0] and multi["flip"]
    for scores in (single, multi):
        assert 0 <= scores["mean_iou"] <= 1 and set(scores["class_iou"]) == set(entry["class_names"])


@pytest.mark.parametrize("kind", ["single_scale", "multi_scale_flip"])
def test_the_recorded_eval_command_reproduces_the_scores(published, tmp_path, kind):
    scores = json.loads((published / "release" / "manifest.json").read_text())["tiny"]["val"][kind]
    command = shlex.split(scores["command"])
    assert command[:2] == ["ainnoseg", "eval"]
    with pytest.raises(SystemExit) as done:
        main(command[1:] + ["--json", str(tmp_path / "m.json"), "--quiet"])
    assert done.value.code in (0, None)
    again = json.loads((tmp_path / "m.json").read_text())
    for key in ("mean_iou", "pixel_accuracy", "boundary_iou"):
        assert again[key] == pytest.approx(scores[key], abs=1e-9), key


def test_publishing_a_folder_without_a_run_explains(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["publish", str(tmp_path), "--out", str(tmp_path / "release")])
    assert done.value.code == 2
    assert "no checkpoint" in capsys.readouterr().err


def _file_bytes(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_a_publish_that_fails_while_scoring_leaves_the_release_as_it_was(
        published, tmp_path, monkeypatch, capsys):
    import shutil

    from ainnoseg.engine import publish as publishing

    release = tmp_path / "release"
    shutil.copytree(published / "release", release)
    (release / "tiny.pt").write_bytes(b"an earlier release of tiny")  # not what publish writes
    before = _file_bytes(release)

    def fails(*args, **kwargs):
        raise ValueError("the scoring broke")
    monkeypatch.setattr(publishing, "evaluate", fails)
    with pytest.raises(SystemExit) as done:
        main(["publish", str(published / "run"), "--out", str(release), "--name", "tiny"])
    assert done.value.code == 2 and "the scoring broke" in capsys.readouterr().err
    assert _file_bytes(release) == before  # no weights replaced, no temporary left


def test_recorded_commands_quote_paths_and_name_them_from_the_project_root(
        published, tmp_path, monkeypatch):
    import shutil

    data = tmp_path / "my camvid"
    shutil.copytree(published / "camvid", data)
    monkeypatch.chdir(tmp_path)  # as from a project root holding the release
    with pytest.raises(SystemExit) as done:
        main(["publish", str(published / "run"), "--out", str(tmp_path / "release dir"),
              "--name", "tiny", "--data", str(data), "--ms-scales", "1.0"])
    assert done.value.code == 0
    entry = json.loads((tmp_path / "release dir" / "manifest.json").read_text())["tiny"]
    command = shlex.split(entry["val"]["single_scale"]["command"])
    assert command[:4] == ["ainnoseg", "eval", "release dir/tiny.pt", "my camvid"]
    # what ran, named from the project root when it lies under it or beside it
    assert entry["config"]["data"] == f"../{published.name}/camvid"
    with pytest.raises(SystemExit) as done:
        main(command[1:] + ["--json", str(tmp_path / "m.json"), "--quiet"])
    assert done.value.code in (0, None)
    scores = json.loads((tmp_path / "m.json").read_text())
    assert scores["mean_iou"] == pytest.approx(entry["val"]["single_scale"]["mean_iou"], abs=1e-9)


def test_a_republished_entry_keeps_what_its_card_says_it_works_on(published, tmp_path):
    release = tmp_path / "release"
    card = ["--works-on", "striped test frames of 64 x 96 pixels",
            "--limits", "expect nothing useful elsewhere"]
    for extra in (card, []):
        with pytest.raises(SystemExit) as done:
            main(["publish", str(published / "run"), "--out", str(release), "--name", "tiny",
                  "--ms-scales", "1.0", *extra])
        assert done.value.code == 0
        entry = json.loads((release / "manifest.json").read_text())["tiny"]
        assert entry["works_on"] == "striped test frames of 64 x 96 pixels"
        assert entry["limits"] == "expect nothing useful elsewhere"
