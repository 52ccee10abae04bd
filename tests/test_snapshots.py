"""Predictions over training time: a training run saves the predictions of a
few val images it chose once at each evaluation, a resumed run keeps those
images, and the reader turns the files into pictures, naming any file it
cannot read instead of failing."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ainnoseg.config import ConfigError, from_dict
from ainnoseg.engine.snapshots import choose_images
from ainnoseg.engine.train import resume, train
from ainnoseg.runs import snapshots
from ainnoseg.runs.files import read_jsonl
from killed import Killed

TINY = {
    "data": "synthetic", "crop_size": [64, 80], "scale": [64, 80], "ratio_range": [1.0, 1.0],
    "batch_size": 2, "workers": 0, "iterations": 4, "eval_every": 2, "val_limit": 5,
    "log_every": 1, "checkpoint_every": 2, "model": "hrnetv2_w18s", "snapshot_images": 2,
}
PALETTE = [(0, 0, 0), (255, 0, 0), (0, 255, 0)]


pytestmark = pytest.mark.usefixtures("one_thread")


def _config(run_dir, **values):
    return from_dict({**TINY, "run_dir": str(run_dir), **values})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 4-step run evaluated at steps 2 and 4."""
    run_dir = tmp_path_factory.mktemp("snapshots") / "run"
    train(_config(run_dir))
    return run_dir


def _palette_png(path):
    picture = Image.open(path)
    return picture.mode, np.asarray(picture)


def test_a_run_saves_the_chosen_images_predictions_at_each_evaluation(trained):
    record = snapshots.read_record(trained)
    assert len(record["indices"]) == 2 and all(0 <= i < 5 for i in record["indices"])
    assert record["names"] == [f"val {i:05d}" for i in record["indices"]]
    assert record["split"] == "val" and record["class_names"][2] == "pole"
    assert snapshots.saved_steps(trained) == [2, 4]
    for index in record["indices"]:
        mode, labels = _palette_png(trained / "snapshots" / "step_000004" / f"{index}.png")
        assert mode == "P" and labels.max() < 11  # class indices, coloured by the palette
    rows = snapshots.snapshot(trained, 4)
    assert [row["index"] for row in rows] == record["indices"]
    for row in rows:
        assert row["problem"] is None
        assert row["image"].dtype == np.uint8 and row["image"].shape == (256, 320, 3)
        assert row["truth"].shape == row["prediction"].shape == row["image"].shape


def test_without_snapshots_a_run_saves_none_and_trains_the_same(trained, tmp_path):
    run_dir = tmp_path / "plain"
    train(_config(run_dir, snapshot_images=0))
    assert not (run_dir / "snapshots").exists()
    assert snapshots.read_record(run_dir) is None and snapshots.saved_steps(run_dir) == []
    with pytest.raises(ValueError, match="saved no predictions over training"):
        snapshots.snapshot(run_dir, 2)
    # predicting the snapshots draws no random numbers: the same losses and scores
    assert _results(run_dir) == _results(trained)


def _results(run_dir):
    timings = ("images_per_s", "data_s")
    return [{key: value for key, value in record.items() if key not in timings}
            for record in read_jsonl(run_dir / "metrics.jsonl")]


def test_a_resumed_run_keeps_its_images_and_adds_the_later_steps(tmp_path):
    run_dir = tmp_path / "run"

    def kill_at_step_3(step, total):
        if step == 3:
            raise Killed()

    with pytest.raises(Killed):
        train(_config(run_dir), on_step=kill_at_step_3)
    assert snapshots.saved_steps(run_dir) == [2]
    # The record is read back, never chosen again: changed here, it is what is followed.
    record_file = run_dir / "snapshots" / "images.json"
    record = json.loads(record_file.read_text())
    kept = [index for index in range(5) if index not in record["indices"]][:1]
    record.update(indices=kept, names=["kept"])
    record_file.write_text(json.dumps(record))
    (run_dir / "snapshots" / "step_000003").mkdir()  # past the checkpoint: dropped
    (run_dir / "snapshots" / "step_000002" / ".0.png.x1.tmp").write_bytes(b"half")
    resume(run_dir)
    assert snapshots.saved_steps(run_dir) == [2, 4]
    assert sorted(p.name for p in (run_dir / "snapshots" / "step_000004").iterdir()) == \
        [f"{kept[0]}.png"]
    assert not list((run_dir / "snapshots").glob("**/*.tmp"))


def test_a_new_start_in_a_run_directory_chooses_afresh_and_drops_old_predictions(tmp_path):
    # what a run killed between its first snapshots and its first checkpoint leaves
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("model: hrnetv2_w18s\n")
    (run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 9.0}\n')
    snapshots.record_images(run_dir, "val", [(99, "old", np.zeros((8, 8, 3), np.uint8),
                                              np.zeros((8, 8), np.uint8))], ["a"], [(0, 0, 0)])
    (run_dir / "snapshots" / "step_000006").mkdir()
    train(_config(run_dir, iterations=2, snapshot_images=1))
    assert snapshots.saved_steps(run_dir) == [2]
    assert snapshots.read_record(run_dir)["indices"] != [99]


def test_snapshot_images_cannot_be_negative():
    with pytest.raises(ConfigError, match="snapshot_images=-1"):
        from_dict({"snapshot_images": -1})


class _Masks(torch.utils.data.Dataset):
    """A val set whose sample i holds the classes in classes[i] (255 ignored)."""
    ignore_index = 255

    def __init__(self, classes):
        self.classes = classes

    def __len__(self):
        return len(self.classes)

    def __getitem__(self, index):
        mask = torch.full((4, 4), 255)
        mask.view(-1)[:len(self.classes[index])] = torch.tensor(self.classes[index])
        return torch.zeros(3, 4, 4), mask


def test_images_with_the_most_classes_are_chosen_spread_over_the_split():
    val_set = _Masks([[0], [0, 1, 2], [1], [0, 1], [2], [0, 1, 2, 3], [1], [0]])
    assert choose_images(val_set, 2) == [1, 5]
    assert choose_images(val_set, 0) == [] and choose_images(_Masks([]), 3) == []
    assert choose_images(val_set, 20) == list(range(8))
    # of 40 alike, four evenly spaced candidates (0, 13, 26, 39): the first
    assert choose_images(_Masks([[0]] * 40), 1) == [0]
    # two of 40 alike: one from each half of the candidates, not the first two
    assert choose_images(_Masks([[0]] * 40), 2) == [0, 22]


# Reading


def _saved_run(run_dir, size=(40, 64)):
    """A run directory with two images' snapshots at steps 2 and 4 (no training)."""
    image = np.full((*size, 3), 100, np.uint8)
    truth = np.zeros(size, np.uint8)
    truth[:, size[1] // 2:] = 1
    snapshots.record_images(run_dir, "val", [(3, "a", image, truth), (7, "b", image, truth)],
                            ["zero", "one", "two"], PALETTE)
    for step, label in ((2, 0), (4, 2)):
        predictions = {3: np.full(size, label, np.uint8), 7: truth}
        snapshots.save_predictions(run_dir, step, predictions, PALETTE)
    return run_dir


def test_the_pictures_change_with_the_step(tmp_path):
    run_dir = _saved_run(tmp_path / "run")
    assert snapshots.saved_steps(run_dir) == [2, 4]
    early, late = snapshots.snapshot(run_dir, 2), snapshots.snapshot(run_dir, 4)
    assert [row["name"] for row in early] == ["a", "b"]
    assert not np.array_equal(early[0]["prediction"], late[0]["prediction"])
    np.testing.assert_array_equal(early[1]["prediction"], early[1]["truth"])
    assert tuple(late[0]["prediction"][0, 0]) == (50, 178, 50)  # half image, half green


def test_large_images_are_stored_small(tmp_path):
    run_dir = _saved_run(tmp_path / "run", size=(400, 640))
    row = snapshots.snapshot(run_dir, 4)[1]
    assert row["image"].shape == (200, 320, 3) and row["prediction"].shape == (200, 320, 3)


def test_a_missing_or_damaged_picture_is_named_and_the_others_are_shown(tmp_path):
    run_dir = _saved_run(tmp_path / "run")
    (run_dir / "snapshots" / "step_000004" / "3.png").unlink()
    (run_dir / "snapshots" / "truth" / "7.png").write_bytes(b"not a png")
    first, second = snapshots.snapshot(run_dir, 4)
    assert "step_000004/3.png is missing" in first["problem"]
    assert first["image"] is not None and first["prediction"] is None
    assert "truth/7.png" in second["problem"] and second["truth"] is None
    assert snapshots.snapshot(run_dir, 2)[0]["problem"] is None


def test_a_prediction_with_a_class_outside_the_palette_is_a_problem_not_a_crash(tmp_path):
    run_dir = _saved_run(tmp_path / "run")
    snapshots.save_predictions(run_dir, 6, {3: np.full((40, 64), 9, np.uint8)}, PALETTE)
    assert "palette has 3 colours" in snapshots.snapshot(run_dir, 6)[0]["problem"]


def test_a_damaged_record_is_named(tmp_path):
    run_dir = _saved_run(tmp_path / "run")
    record = run_dir / "snapshots" / "images.json"
    record.write_text('{"indices": [3]')
    with pytest.raises(ValueError, match="images.json is not readable JSON"):
        snapshots.snapshot(run_dir, 2)
    record.write_text('{"indices": [3], "names": []}')
    with pytest.raises(ValueError, match="images.json is damaged .*lacks split"):
        snapshots.read_record(run_dir)


def test_a_selftraining_runs_snapshots_are_found_by_round_and_phase(tmp_path):
    run_dir = tmp_path / "st"
    _saved_run(run_dir / "round_0")
    _saved_run(run_dir / "round_1" / "student")
    _saved_run(run_dir / "round_1" / "finetune")
    _saved_run(run_dir / "round_2" / "student")
    (run_dir / "round_3" / "student").mkdir(parents=True)  # not trained yet
    found = snapshots.snapshot_runs(run_dir)
    assert found == {0: {"teacher": run_dir / "round_0"},
                     1: {"student": run_dir / "round_1" / "student",
                         "fine-tune": run_dir / "round_1" / "finetune"},
                     2: {"student": run_dir / "round_2" / "student"}}
    assert snapshots.snapshot_runs(tmp_path / "nothing") == {}
