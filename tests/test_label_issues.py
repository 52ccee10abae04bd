"""Label errors found by a model's probabilities (Lad & Mueller 2023): planted
errors rank first, clean scenes score high, and the suspected pixels and
swaps are the planted ones."""

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

import ainnoseg
from ainnoseg.analysis import label_issues
from ainnoseg.data import build_dataset
from data_trees import write_image

CAR, ROAD = 8, 3  # the synthetic scenes' classes


class Planted:
    """A labelled dataset whose masks, in the `planted` images, give every
    pixel of class `source` the label `target`."""

    def __init__(self, dataset, planted, source=CAR, target=ROAD):
        self.dataset, self.planted, self.source, self.target = dataset, planted, source, target
        self.num_classes, self.class_names = dataset.num_classes, dataset.class_names
        self.ignore_index, self.split = dataset.ignore_index, dataset.split

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        image, mask = self.dataset[index]
        if index in self.planted:
            mask = mask.clone()
            mask[mask == self.source] = self.target
        return image, mask


def oracle_probabilities(truth, num_classes, seed):
    """(K, H, W) probabilities of a model that knows the clean labels and is
    sure of them, with some noise."""
    generator = torch.Generator().manual_seed(seed)
    truth = torch.as_tensor(truth, dtype=torch.int64)
    truth = torch.where(truth < num_classes, truth, 0)  # ignored pixels: any class
    logits = 6.0 * torch.nn.functional.one_hot(truth, num_classes).permute(2, 0, 1).float()
    logits += torch.randn(logits.shape, generator=generator)
    return logits.softmax(0).numpy()


def planted_predictions(dataset, clean, planted):
    """(index, oracle probabilities of the clean labels, planted labels) of every image."""
    for index in range(len(dataset)):
        truth = clean[index][1].numpy()
        yield index, oracle_probabilities(truth, dataset.num_classes, index), \
            dataset[index][1].numpy()


@pytest.fixture(scope="module")
def clean():
    return build_dataset("synthetic", "val", length=12)


def images_with_most(dataset, class_id, count):
    sizes = [(int((dataset[i][1] == class_id).sum()), i) for i in range(len(dataset))]
    return {index for _, index in sorted(sizes, reverse=True)[:count]}


def test_self_confidence_is_the_probability_of_the_given_label():
    probabilities = np.random.default_rng(0).dirichlet(np.ones(3), size=(4, 5)).transpose(2, 0, 1)
    labels = np.array([[0, 1, 2, 255, 1]] * 4)
    confidence = label_issues.self_confidence(probabilities, labels, 255)
    for y in range(4):
        for x in range(5):
            if labels[y, x] == 255:
                assert np.isnan(confidence[y, x])
            else:
                assert confidence[y, x] == pytest.approx(probabilities[labels[y, x], y, x])
    with pytest.raises(ValueError, match="differ in size"):
        label_issues.self_confidence(probabilities, labels[:3], 255)


def test_the_soft_minimum_is_pulled_down_by_a_few_confidently_wrong_pixels():
    assert label_issues.soft_minimum([0.9] * 50) == pytest.approx(0.9)
    many_good = [0.95] * 10000
    few_bad = many_good[:-300] + [0.02] * 300
    thin_uncertain = many_good[:-300] + [0.6] * 300
    assert label_issues.soft_minimum(few_bad) < 0.1 < label_issues.soft_minimum(thin_uncertain)
    assert label_issues.soft_minimum(few_bad) == pytest.approx(
        np.average(few_bad, weights=np.exp(-np.array(few_bad) / 0.1)))
    assert np.isnan(label_issues.soft_minimum([np.nan, np.nan]))


def test_a_pixel_belongs_confidently_to_its_most_probable_class_above_threshold():
    # Three pixels, three classes: columns are pixels.
    probabilities = np.array([[0.5, 0.5, 0.1],
                              [0.4, 0.3, 0.1],
                              [0.1, 0.2, 0.8]])[:, None, :]
    thresholds = np.array([0.6, 0.35, 0.9])
    confident = label_issues.confident_classes(probabilities, thresholds)
    assert confident.tolist() == [[1, -1, -1]]
    labels = np.array([[0, 0, 2]])
    flags = label_issues.suspected_pixels(probabilities, labels, thresholds, 255)
    assert flags.tolist() == [[1, label_issues.NOT_SUSPECTED, label_issues.NOT_SUSPECTED]]


def test_planted_errors_rank_first_and_clean_scenes_score_high(clean):
    planted = images_with_most(clean, CAR, 3)
    dataset = Planted(clean, planted)
    issues = label_issues.judge(planted_predictions(dataset, clean, planted), dataset)
    ranked = [row["index"] for row in issues.rows]
    assert set(ranked[:3]) == planted
    clean_scores = [row["score"] for row in issues.rows[3:]]
    assert min(clean_scores) > 0.6 > 0.3 > max(row["score"] for row in issues.rows[:3])
    assert issues.swaps[0]["text"].startswith("car labelled road")
    assert issues.swaps[0]["images"] == 3 and len(issues.swaps) == 1
    for index in range(len(clean)):  # suspected: most of the relabelled car, nothing else
        car = clean[index][1].numpy() == CAR
        flagged = issues.suspected[index] != label_issues.NOT_SUSPECTED
        assert not (flagged & ~car).any()
        row = next(row for row in issues.rows if row["index"] == index)
        if index in planted:
            assert flagged.sum() > 0.6 * car.sum()
            assert (issues.suspected[index][flagged] == CAR).all()
            assert row["swap"].startswith("car labelled road")
            labelled = (clean[index][1].numpy() != clean.ignore_index).sum()
            assert row["suspected"] == pytest.approx(flagged.sum() / labelled)
        else:
            assert not flagged.any() and row["swap"] == ""
    # The thresholds are each class's mean self-confidence: a bit under 1 here,
    # and lower for road, whose planted pixels the oracle calls car.
    assert issues.thresholds[ROAD] < issues.thresholds[CAR]


def test_the_band_share_counts_suspected_pixels_at_boundaries(clean):
    planted = images_with_most(clean, CAR, 2)
    dataset = Planted(clean, planted)
    issues = label_issues.judge(planted_predictions(dataset, clean, planted), dataset)
    suspected_share, labelled_share = issues.band_share()
    band = issues.band
    assert band["suspected"] == sum(int((f != 255).sum()) for f in issues.suspected.values())
    assert 0 < labelled_share < 1 and 0 < suspected_share <= 1
    assert band["labelled"] == sum(int((clean[i][1].numpy() != 255).sum()) for i in range(12))


def test_a_released_model_ranks_images_with_a_car_labelled_road_first(clean):
    model = ainnoseg.load("synthetic/hrnetv2_w18s")
    planted = images_with_most(clean, CAR, 3)
    calls = []
    issues = label_issues.find(model, Planted(clean, planted), on_image=lambda *a: calls.append(a))
    assert {row["index"] for row in issues.rows[:3]} == planted
    assert calls[-1] == (12, 12)
    assert any(swap["label"] == "road" and swap["looks like"] == "car" for swap in issues.swaps)


def test_wrong_inputs_are_refused_in_words(clean, tmp_path):
    with pytest.raises(ValueError, match="predicts 3 classes"):
        label_issues.judge([(0, np.full((3, 4, 4), 1 / 3), np.zeros((4, 4), np.uint8))], clean)
    write_image(tmp_path / "pool" / "a.png", 64, 96)
    model = ainnoseg.load("synthetic/hrnetv2_w18s")
    with pytest.raises(ValueError, match="finding label issues needs ground truth"):
        label_issues.find(model, build_dataset(tmp_path / "pool"))


def test_the_cli_writes_tables_and_pictures_and_runs_twice(tmp_path, capsys):
    from ainnoseg.cli import main

    out = tmp_path / "issues"
    command = ["data", "issues", "synthetic/hrnetv2_w18s", "synthetic", "--split", "val",
               "--images", "4", "--out", str(out), "--quiet"]
    with pytest.raises(SystemExit) as done:
        main(command + ["--pictures", "2"])
    assert done.value.code == 0
    with open(out / "images.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["rank"] for row in rows] == ["1", "2", "3", "4"]
    scores = [float(row["score"]) for row in rows]
    assert scores == sorted(scores)
    pictures = sorted(path.name for path in (out / "worst").iterdir())
    assert pictures == [f"001_{rows[0]['name'].replace(' ', '_')}.png",
                        f"002_{rows[1]['name'].replace(' ', '_')}.png"]
    with Image.open(out / "worst" / pictures[0]) as picture:
        assert picture.size == (3 * 320 + 16, 256)  # suspected | label | prediction
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 4 and set(summary["thresholds"]) == set(
        build_dataset("synthetic", "val").class_names)
    assert "most common swaps" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:  # again, with fewer pictures: no stale ones
        main(command + ["--pictures", "1"])
    assert done.value.code == 0 and len(list((out / "worst").iterdir())) == 1


def test_the_cli_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    from ainnoseg.cli import main

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as done:
        main(["data", "issues", "synthetic/hrnetv2_w18s", "synthetic", "--out", str(tmp_path)])
    assert done.value.code == 2
    assert "did not write; nothing was written" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
