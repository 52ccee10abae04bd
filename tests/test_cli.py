"""The command line: every mistake a user can make ends in one line, `error: ...`,
and exit status 2; predictions never write over an input or over each other."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import ainnoseg
from ainnoseg.checkpoints.files import save_checkpoint
from ainnoseg.cli import main
from ainnoseg.data import DataError
from data_trees import stripes, write_image, write_mask

TINY = {
    "model": "hrnetv2_w18s", "crop_size": [64, 96], "scale": [64, 96],
    "ratio_range": [1.0, 1.0], "batch_size": 2, "workers": 0, "iterations": 1,
    "eval_every": 1, "log_every": 1, "checkpoint_every": 1,
}


def _one_error_line(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _run(argv):
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code


def _pets(root, count=2, size=(64, 96)):
    """A folder dataset with train/ and val/ split folders."""
    (root / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("background\ncat\ndog\n")
    for split in ("train", "val"):
        for index in range(count):
            write_image(root / "images" / split / f"{index}.png", *size, seed=index)
            write_mask(root / "masks" / split / f"{index}.png", stripes(*size, values=(0, 1, 2)))
    return root


def _config(tmp_path, **values):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "run_dir": str(tmp_path / "run"), **values}))
    return str(path)


@pytest.fixture
def checkpoint(tmp_path):
    model = ainnoseg.build_model("hrnetv2_w18s", num_classes=3)
    path = tmp_path / "model.pt"
    save_checkpoint({"model": model.state_dict(),
                     "config": {"model": "hrnetv2_w18s", "crop_size": [64, 96]},
                     "class_names": ["background", "cat", "dog"], "palette": [],
                     "metrics": {}, "step": 0}, path)
    return path


# Mistakes: one line, exit status 2


def test_training_on_a_missing_data_path(tmp_path, capsys):
    assert _run(["train", _config(tmp_path), f"data={tmp_path / 'nowhere'}"]) == 2
    assert "no dataset folder at" in _one_error_line(capsys)


def test_a_folder_of_images_without_masks_cannot_train(tmp_path, capsys):
    for index in range(2):
        write_image(tmp_path / "photos" / f"{index}.png", 64, 64, seed=index)
    assert _run(["train", _config(tmp_path), f"data={tmp_path / 'photos'}"]) == 2
    line = _one_error_line(capsys)
    assert "no masks" in line and str(tmp_path / "photos") in line


def test_damaged_data_is_reported_by_file_before_training_starts(tmp_path, capsys):
    data = _pets(tmp_path / "pets")
    (data / "images" / "train" / "0.png").write_bytes(b"\x89PNG not really")
    write_mask(data / "masks" / "val" / "1.png", np.zeros((10, 10)))
    assert _run(["train", _config(tmp_path), f"data={data}"]) == 2
    line = _one_error_line(capsys)
    assert f"cannot read {data / 'images' / 'train' / '0.png'}" in line
    assert f"mask {data / 'masks' / 'val' / '1.png'} is 10x10 but its image" in line
    assert "ainnoseg data check" in line
    assert not (tmp_path / "run").exists()  # nothing was started


def test_a_bad_eval_scale_is_refused_before_training(tmp_path, capsys):
    assert _run(["train", _config(tmp_path), "data=synthetic", "eval_scales=[0]"]) == 2
    assert "eval_scales=[0.0] must be positive" in _one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    (tmp_path / "model.pt").write_bytes(b"not a checkpoint")
    assert _run(["eval", str(tmp_path / "model.pt"), "synthetic"]) == 2
    assert "cannot read checkpoint" in _one_error_line(capsys)


def test_a_checkpoint_without_class_names(tmp_path, capsys):
    model = ainnoseg.build_model("hrnetv2_w18s", num_classes=3)
    save_checkpoint({"model": model.state_dict(), "config": {"model": "hrnetv2_w18s"}},
                    tmp_path / "model.pt")
    assert _run(["eval", str(tmp_path / "model.pt"), "synthetic"]) == 2
    assert "has no class names" in _one_error_line(capsys)


def test_a_checkpoint_of_another_class_count_names_the_fine_tuning_command(
        checkpoint, capsys):
    assert _run(["eval", str(checkpoint), "synthetic"]) == 2
    line = _one_error_line(capsys)
    assert "predicts 3 classes" in line and f"init_checkpoint={checkpoint}" in line


def test_an_error_from_a_loader_worker_is_its_own_message():
    from ainnoseg.cli import one_line

    class Broken(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, index):
            raise DataError("cannot read frames/0001.png: broken data stream")

    with pytest.raises(DataError) as error:
        next(iter(torch.utils.data.DataLoader(Broken(), num_workers=1)))
    assert "Traceback" in str(error.value)
    assert one_line(error.value) == "cannot read frames/0001.png: broken data stream"


# predict: outputs never replace an input or each other


def _photo(path, seed=0):
    write_image(path, 64, 96, seed=seed)
    return path


def test_predict_refuses_to_write_into_its_input_folder(tmp_path, checkpoint, capsys):
    folder = tmp_path / "inplace"
    photo = _photo(folder / "0016E5_08137.png")
    before = photo.read_bytes()
    assert _run(["predict", str(checkpoint), str(folder), "--out", str(folder)]) == 2
    assert "would write over the input" in _one_error_line(capsys)
    assert photo.read_bytes() == before and sorted(folder.iterdir()) == [photo]
    jpeg = folder / "frame.jpg"
    Image.open(photo).save(jpeg)
    photo.unlink()
    assert _run(["predict", str(checkpoint), str(folder), "--out", str(folder)]) == 2
    assert "is an input folder" in _one_error_line(capsys)
    assert sorted(folder.iterdir()) == [jpeg]


def test_images_of_one_name_in_two_folders_get_two_outputs(tmp_path, checkpoint, capsys,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    _photo(tmp_path / "dupA" / "a.png", seed=1)
    _photo(tmp_path / "dupB" / "a.png", seed=2)
    Image.open(tmp_path / "dupB" / "a.png").save(tmp_path / "dupB" / "a.jpg")
    assert _run(["predict", str(checkpoint), "dupA/a.png", "dupB", "--out", "pred"]) == 0
    out = capsys.readouterr().out
    written = sorted(str(path.relative_to(tmp_path / "pred"))
                     for path in (tmp_path / "pred").rglob("*.png"))
    assert written == ["dupA/a.png", "dupA/a_overlay.png", "dupB/a.png", "dupB/a_overlay.png",
                       "dupB/a_png.png", "dupB/a_png_overlay.png"]
    assert "dupA/a.png -> pred/dupA/a.png, pred/dupA/a_overlay.png" in out
    assert "dupB/a.jpg -> pred/dupB/a.png" in out  # the first by name keeps the plain name
    assert "dupB/a.png -> pred/dupB/a_png.png" in out and "segmented 3 image(s)" in out
    labels = np.asarray(Image.open(tmp_path / "pred" / "dupA" / "a.png"))
    assert labels.shape == (64, 96) and labels.max() < 3
    # again: the same outputs, and none of them taken for an input
    assert _run(["predict", str(checkpoint), "dupA/a.png", "dupB", "--out", "pred"]) == 0
    assert "segmented 3 image(s)" in capsys.readouterr().out
    assert len(list((tmp_path / "pred").rglob("*.png"))) == 6


def test_one_folder_of_images_is_written_straight_under_out(tmp_path, checkpoint, capsys):
    _photo(tmp_path / "frames" / "f1.png")
    assert _run(["predict", str(checkpoint), str(tmp_path / "frames"),
                 "--out", str(tmp_path / "frames" / "predictions")]) == 0
    assert sorted(p.name for p in (tmp_path / "frames" / "predictions").iterdir()) == [
        "f1.png", "f1_overlay.png"]
    assert _run(["predict", str(checkpoint), str(tmp_path / "frames"),
                 "--out", str(tmp_path / "frames" / "predictions")]) == 0
    assert "segmented 1 image(s)" in capsys.readouterr().out


def test_output_into_a_reader_that_stops_early_ends_quietly():
    """`ainnoseg models | head -1`, with the reader gone before the first write."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    process = subprocess.Popen([sys.executable, "-m", "ainnoseg", "models"], stdout=write_end,
                               stderr=subprocess.PIPE, text=True)
    os.close(write_end)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0 and err == "", err
