import os

import numpy as np
import pytest
import torch

from ainnoseg import metrics
from ainnoseg.analysis import (confidence_map, confidence_picture, find_checkpoints,
                               image_metrics, load_sample, sample_name, score_images,
                               worst_images)
from ainnoseg.checkpoints import ModelMeta
from ainnoseg.data import DataError, build_dataset
from ainnoseg.viz import ERROR_COLORS, error_map


class ColourModel(torch.nn.Module):
    """A 1x1 convolution: a model `segment_image` takes, fast enough for tests."""

    def __init__(self, num_classes=11):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, num_classes, 1)
        self.meta = ModelMeta(name="colour", class_names=[str(k) for k in range(num_classes)],
                              palette=[(20 * k, 0, 0) for k in range(num_classes)],
                              config={"crop_size": [64, 64]}, checkpoint_path="colour.pt")

    def forward(self, images):
        return {"out": self.conv(images)}


def _halves(height=40, width=60):
    target = np.zeros((height, width), np.int64)
    target[:, width // 2:] = 1
    return target


def test_a_perfect_prediction_scores_one_and_has_no_errors():
    target = _halves()
    scores = image_metrics(target, target, num_classes=3)
    assert scores["mean_iou"] == 1.0 and scores["boundary_iou"] == 1.0
    assert scores["pixel_accuracy"] == 1.0 and scores["boundary_fscore"] == 1.0
    assert scores["boundary_errors"] == 0.0 and scores["interior_errors"] == 0.0


def test_image_metrics_agree_with_the_metrics_module_and_the_error_map():
    target = _halves()
    target[:5] = 255  # ignored rows
    pred = _halves()
    pred[:, 25:40] = 2  # a band of wrong pixels around the boundary and inside class 1
    scores = image_metrics(torch.from_numpy(pred), target, num_classes=3)
    cm = metrics.confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target), 3)
    assert scores["mean_iou"] == pytest.approx(metrics.mean_iou(cm))
    assert scores["pixel_accuracy"] == pytest.approx(metrics.pixel_accuracy(cm))
    counts = metrics.boundary_iou_counts(torch.from_numpy(pred), torch.from_numpy(target), 3)
    assert scores["boundary_iou"] == pytest.approx(
        torch.nanmean(metrics.boundary_iou(counts)).item())
    counts = metrics.boundary_fscore_counts(torch.from_numpy(pred), torch.from_numpy(target), 3)
    assert scores["boundary_fscore"] == pytest.approx(
        torch.nanmean(metrics.boundary_fscore(counts)).item())
    picture = error_map(pred, target)
    labelled = (target != 255).sum()
    orange = np.all(picture == ERROR_COLORS["boundary error"], axis=-1).sum()
    red = np.all(picture == ERROR_COLORS["interior error"], axis=-1).sum()
    assert scores["boundary_errors"] == pytest.approx(orange / labelled)
    assert scores["interior_errors"] == pytest.approx(red / labelled)
    assert 0 < orange and 0 < red
    total = scores["boundary_errors"] + scores["interior_errors"]
    assert total == pytest.approx(1 - scores["pixel_accuracy"])


def test_an_image_without_labelled_pixels_has_no_scores():
    target = np.full((8, 8), 255)
    assert set(image_metrics(np.zeros((8, 8), np.int64), target, 3).values()) == {None}


def test_image_metrics_refuse_a_prediction_of_another_size():
    with pytest.raises(ValueError, match="predict at the image's size"):
        image_metrics(np.zeros((4, 4), np.int64), np.zeros((4, 5), np.int64), 3)


def test_score_images_scores_each_chosen_image_and_reports_progress():
    dataset = build_dataset("synthetic", "val", size=(64, 80), length=5)
    model = ColourModel().eval()
    seen = []
    rows = score_images(model, dataset, indices=[3, 1], on_image=lambda d, t: seen.append((d, t)))
    assert [row["index"] for row in rows] == [3, 1] and seen == [(1, 2), (2, 2)]
    assert rows[0]["name"] == "val 00003"
    image, mask = load_sample(dataset, 3)
    assert image.shape == (64, 80, 3) and image.dtype == np.uint8 and mask.shape == (64, 80)
    assert 0 <= rows[0]["mean_iou"] <= 1 and 0 <= rows[0]["pixel_accuracy"] <= 1


def test_score_images_needs_ground_truth(tmp_path):
    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match="needs ground truth"):
        score_images(ColourModel().eval(), build_dataset(tmp_path))
    assert sample_name(build_dataset(tmp_path), 0) == "a"


def test_worst_images_sorts_by_the_first_checkpoint_and_adds_the_gain():
    teacher = [{"index": 0, "name": "a", "mean_iou": 0.9, "boundary_iou": 0.5,
                "pixel_accuracy": 0.95},
               {"index": 1, "name": "b", "mean_iou": 0.2, "boundary_iou": 0.1,
                "pixel_accuracy": 0.5},
               {"index": 2, "name": "c", "mean_iou": None, "boundary_iou": None,
                "pixel_accuracy": None}]
    student = [dict(row, mean_iou=None if row["mean_iou"] is None else row["mean_iou"] + 0.05)
               for row in teacher]
    table = worst_images({"teacher": teacher, "student": student})
    assert [row["name"] for row in table] == ["b", "a", "c"]
    assert table[0]["mIoU gain"] == pytest.approx(0.05)
    assert table[0]["Boundary IoU teacher"] == 0.1 and table[2]["mIoU gain"] is None
    assert worst_images({}) == []


def test_find_checkpoints_lists_pt_files_newest_first(tmp_path):
    (tmp_path / "run_a").mkdir()
    (tmp_path / "run_b" / "round_1").mkdir(parents=True)
    old, new = tmp_path / "run_a" / "best.pt", tmp_path / "run_b" / "round_1" / "last.pt"
    old.write_bytes(b"x")
    new.write_bytes(b"x")
    (tmp_path / "run_a" / "notes.txt").write_text("not a checkpoint")
    os.utime(old, (1_000, 1_000))
    found = find_checkpoints(tmp_path)
    assert [entry["label"] for entry in found] == ["run_b/round_1/last.pt", "run_a/best.pt"]
    assert find_checkpoints(tmp_path / "missing") == []


def test_confidence_map_is_the_highest_probability():
    model = ColourModel().eval()
    image = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    labels, confidence = confidence_map(model, image)
    assert labels.shape == confidence.shape == (20, 30)
    assert (confidence >= 1 / 11 - 1e-6).all() and (confidence <= 1).all()


def test_confidence_picture_is_grey_and_red_below_the_threshold():
    picture = confidence_picture(np.array([[1.0, 0.2]]), threshold=0.5)
    assert picture.dtype == np.uint8 and picture.shape == (1, 2, 3)
    assert picture[0, 0].tolist() == [255, 255, 255]
    red, green, blue = picture[0, 1].tolist()
    assert red > 128 and green == blue < red


def test_score_images_names_an_image_too_small_for_the_network(tmp_path):
    from data_trees import folder_tree, write_image, write_mask

    root = folder_tree(tmp_path / "pets", count=2)
    write_image(root / "images" / "img1.jpg", 3, 3)
    write_mask(root / "masks" / "img1.png", np.zeros((3, 3)))
    model = ColourModel(3).eval()
    model.stride = 16
    with pytest.raises(DataError, match="img1: the image is 3 x 3 pixels, smaller than the "
                                        "networks' stride of 16 pixels"):
        score_images(model, build_dataset(root))
