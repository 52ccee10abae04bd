"""ainnoseg.analysis.dataset_scores: what the notebooks use beyond the rest of the library."""

import math

import numpy as np
import pytest
import torch

import ainnoseg
import ainnoseg.analysis
import ainnoseg.runs.launching
from ainnoseg.analysis import dataset_scores as tutorials
from ainnoseg.data import build_dataset, detect_layout


def release(name, model):
    return {"name": name, "dataset": name.split("/")[0], "model": model}


RELEASES = [release("camvid/hrnetv2_w18s", "hrnetv2_w18s"),
            release("camvid/ainnoseg_w18s", "ainnoseg_w18s"),
            release("other/danet_r18", "danet_r18")]


def test_released_models_keep_released_names_and_substitute_the_family():
    wanted = {"HRNet": "synthetic/hrnetv2_w18s", "DANet": "synthetic/danet_r18",
              "AinnoSeg": "camvid/ainnoseg_w18s", "OCR": "synthetic/ocrnet_hrnet_w18s"}
    chosen, notes = tutorials.released_models(wanted, RELEASES)
    assert chosen == {"HRNet": "camvid/hrnetv2_w18s", "DANet": "other/danet_r18",
                      "AinnoSeg": "camvid/ainnoseg_w18s"}
    assert any("OCR is left out" in note for note in notes) and len(notes) == 3


def test_released_models_keep_a_checkpoint_file(tmp_path):
    path = tmp_path / "best.pt"
    path.write_bytes(b"")
    assert tutorials.released_models({"mine": str(path)}, RELEASES) == ({"mine": str(path)}, [])


class Fixed(torch.nn.Module):
    """A 'model' predicting fixed labels, to check the counting."""

    def __init__(self, labels, classes):
        super().__init__()
        self.labels, self.classes = torch.as_tensor(labels), classes
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images, output_size=None):
        return {"out": torch.nn.functional.one_hot(self.labels, self.classes)
                .permute(2, 0, 1)[None].float().expand(images.shape[0], -1, -1, -1)}


def test_compare_on_dataset_scores_and_ranks_disagreement(tmp_path):
    folder = tutorials.write_folder_dataset(tmp_path / "data", train=1, val=2, size=(64, 80))
    dataset = build_dataset(folder, "val")
    _, truth = ainnoseg.analysis.load_sample(dataset, 0)
    k = dataset.num_classes
    perfect = Fixed(np.where(truth == 255, 0, truth).astype(np.int64), k).eval()
    road = Fixed(np.full(truth.shape, 3), k).eval()
    report = tutorials.compare_on_dataset({"perfect": perfect, "road": road}, dataset, [0])
    assert report["scores"]["perfect"]["mean_iou"] == pytest.approx(1.0)
    assert report["scores"]["road"]["mean_iou"] < 0.5
    assert report["images"][0]["disagreement"] > 0
    rows = tutorials.score_rows(report["scores"])
    assert rows[0]["model"] == "perfect" and rows[0]["mIoU"] == 100.0
    classes = tutorials.class_rows(report["scores"])
    absent = [row for row in classes if row["perfect"] is None]
    assert all(math.isnan(report["scores"]["perfect"]["class_iou"][row["class"]])
               for row in absent)


def test_write_folder_dataset_has_the_own_data_layout(tmp_path):
    folder = tutorials.write_folder_dataset(tmp_path / "mine", train=2, val=1, size=(64, 80))
    assert detect_layout(folder) == "folder"
    train, val = build_dataset(folder, "train"), build_dataset(folder, "val")
    assert (len(train), len(val)) == (2, 1) and train.split_folders
    assert train.class_names[2] == "pole" and tuple(train[0][0].shape) == (3, 64, 80)


def test_start_run_launches_once_then_reads_the_finished_run(tmp_path):
    config = ainnoseg.runs.launching.CONFIGS_DIR / "synthetic_tiny.yaml"
    run_dir = tmp_path / "run"
    job = tutorials.start_run("train", config, ["iterations=1", "eval_every=1"], run_dir)
    assert job is not None
    ainnoseg.runs.jobs.wait(run_dir, timeout=300)
    assert ainnoseg.runs.load_run(run_dir).status == "finished"
    assert tutorials.start_run("train", config, [], run_dir) is None
