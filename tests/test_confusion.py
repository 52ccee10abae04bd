"""Confusion matrices: counts against a loop over the pixels, the boundary
part inside the Boundary IoU band, shares per true class, the largest
confusions in words, a whole dataset through a model, and the CSV."""

import csv

import numpy as np
import pytest
import torch

import ainnoseg
from ainnoseg.analysis import confusion
from ainnoseg.analysis.images import boundary_band
from ainnoseg.data import SyntheticScenes

IGNORE = 255  # the tests' own, independent of the library's constant


def _by_loop(pred, target, num_classes, keep):
    counts = np.zeros((num_classes, num_classes), np.int64)
    for t, p, k in zip(target.ravel(), pred.ravel(), keep.ravel()):
        if k and t != IGNORE:
            counts[t, p] += 1
    return counts


def test_counts_match_a_loop_over_the_pixels_and_the_band_holds_the_boundary_ones():
    rng = np.random.default_rng(0)
    target = np.zeros((40, 60), np.int64)
    target[:, 30:] = 1
    target[10:20, 5:15] = 2
    target[0, :] = IGNORE
    pred = np.where(rng.random(target.shape) < 0.2, rng.integers(0, 3, target.shape), target)
    pred[target == IGNORE] = 0
    counts = confusion.counts_of(pred, target, 3, IGNORE)
    everywhere = np.ones(target.shape, bool)
    assert np.array_equal(counts["all"], _by_loop(pred, target, 3, everywhere))
    assert np.array_equal(counts["boundary"], _by_loop(pred, target, 3, boundary_band(target)))
    assert 0 < counts["boundary"].sum() < counts["all"].sum() == (target != IGNORE).sum()


def test_shares_are_per_true_class_and_the_largest_confusions_read_as_words():
    counts = np.array([[90, 10, 0],
                       [41, 59, 0],
                       [0, 0, 0]])  # class 2 has no pixels: its row stays 0
    shares = confusion.normalised(counts)
    assert np.allclose(shares.sum(axis=1), [1, 1, 0])
    rows = confusion.largest(counts, ["Building", "Pole", "Sky"], top=5)
    assert [row["text"] for row in rows] == ["Pole -> Building: 41 % of Pole pixels",
                                             "Building -> Pole: 10 % of Building pixels"]
    assert rows[0]["pixels"] == 41 and rows[0]["share"] == pytest.approx(0.41)


def test_a_prediction_of_another_size_is_refused():
    with pytest.raises(ValueError, match="differ in size"):
        confusion.counts_of(np.zeros((4, 4)), np.zeros((4, 5)), 2, IGNORE)


@pytest.fixture(scope="module")
def scenes_and_model():
    torch.manual_seed(0)
    model = ainnoseg.build_model("hrnetv2_w18s", num_classes=SyntheticScenes.num_classes).eval()
    return SyntheticScenes(split="val", size=(64, 96), length=3), model


def test_a_dataset_sums_its_images_and_reports_progress(scenes_and_model):
    scenes, model = scenes_and_model
    seen = []
    counts = confusion.on_dataset(model, scenes, indices=[0, 2],
                                  on_image=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)] and counts["images"] == 2
    labelled = sum(int((np.asarray(scenes[i][1]) != scenes.ignore_index).sum()) for i in (0, 2))
    assert counts["all"].sum() == labelled
    assert counts["all"].shape == (scenes.num_classes, scenes.num_classes)


def test_the_csv_holds_both_parts_of_every_class_pair(scenes_and_model, tmp_path):
    scenes, model = scenes_and_model
    counts = confusion.on_dataset(model, scenes, indices=[1])
    path = confusion.write_csv(counts, scenes.class_names, tmp_path / "out" / "confusion.csv")
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 2 * scenes.num_classes ** 2
    assert {row["part"] for row in rows} == {"all", "boundary"}
    all_pixels = sum(int(row["pixels"]) for row in rows if row["part"] == "all")
    assert all_pixels == counts["all"].sum()


def test_the_csv_text_is_what_write_csv_writes(scenes_and_model, tmp_path):
    scenes, model = scenes_and_model
    counts = confusion.on_dataset(model, scenes, indices=[0])
    path = confusion.write_csv(counts, scenes.class_names, tmp_path / "c.csv")
    assert path.read_text() == confusion.csv_text(counts, scenes.class_names)


def test_a_split_without_labels_is_refused(scenes_and_model, tmp_path):
    from data_trees import write_image

    from ainnoseg.data import build_dataset

    write_image(tmp_path / "pool" / "a.png", 64, 96)
    with pytest.raises(ValueError, match="a confusion matrix needs ground truth"):
        confusion.on_dataset(scenes_and_model[1], build_dataset(tmp_path / "pool"))
