"""`ainnoseg.analysis.compare`: several models' predictions of one image side by side,
their disagreement, scores, ranking, and single- against multi-scale."""

import numpy as np
import pytest
import torch

from ainnoseg import viz
from ainnoseg.analysis import compare
from ainnoseg.analysis import image_metrics
from ainnoseg.checkpoints import ModelMeta
from ainnoseg.inference import segment_image


class ColourModel(torch.nn.Module):
    """A 1x1 convolution: a model `segment_image` takes, fast enough for tests."""

    def __init__(self, num_classes=4, stride=8):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, num_classes, 1)
        self.stride = stride
        self.meta = ModelMeta(name="test/colour", class_names=[str(k) for k in range(num_classes)],
                              palette=[(40 * k, 0, 0) for k in range(num_classes)],
                              config={"crop_size": [64, 64]}, checkpoint_path="colour.pt")

    def forward(self, images):
        return {"out": self.conv(images)}


def _halves(height=30, width=40, left=0, right=1):
    labels = np.full((height, width), left, np.int64)
    labels[:, width // 2:] = right
    return labels


def _image(height=30, width=40):
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_run_models_times_each_model_and_keeps_their_order():
    models = {"A": ColourModel().eval(), "B": ColourModel(stride=32).eval()}
    image = np.repeat(np.repeat(_image(), 2, axis=0), 2, axis=1)  # over the stride of 32
    predictions = compare.run_models(models, image)
    assert [p.name for p in predictions] == ["A", "B"]
    for prediction, model in zip(predictions, models.values()):
        assert np.array_equal(prediction.labels, segment_image(model, image).numpy())
        assert prediction.seconds > 0 and prediction.model_name == "test/colour"
        assert prediction.parameters == 3 * 4 + 4
    assert compare.largest_stride(models.values()) == 32


def test_a_prediction_picture_draws_boundaries_over_the_overlay_or_alone():
    image, labels = _image(), _halves()
    palette = [(255, 0, 0), (0, 0, 255)]
    picture = compare.prediction_picture(image, labels, palette, opacity=0.5)
    edge = viz.label_boundaries(labels)
    assert (picture[edge] == compare.BOUNDARY_COLOR).all()
    assert np.array_equal(picture[~edge], viz.overlay(image, labels, palette, 0.5)[~edge])
    outline = compare.prediction_picture(image, labels, palette, boundaries_only=True)
    assert (outline[edge] == compare.OUTLINE_COLOR).all()
    assert np.array_equal(outline[~edge], image[~edge])


def test_distinct_labels_counts_the_different_labels_of_each_pixel():
    a = np.array([[0, 1, 2, 3]])
    b = np.array([[0, 1, 5, 4]])
    c = np.array([[0, 2, 5, 5]])
    assert compare.distinct_labels([a, b, c]).tolist() == [[1, 2, 2, 3]]
    assert compare.distinct_labels([a]).tolist() == [[1, 1, 1, 1]]


def test_the_disagreement_picture_marks_two_and_three_labels_apart():
    counts = np.array([[1, 2, 3, 4]])
    picture = compare.disagreement_picture(np.full((1, 4, 3), 200, np.uint8), counts)
    colours = compare.DISAGREEMENT_COLORS
    assert tuple(picture[0, 1]) == colours["two labels"]
    assert tuple(picture[0, 2]) == tuple(picture[0, 3]) == colours["three or more labels"]
    assert picture[0, 0, 0] == picture[0, 0, 1] == picture[0, 0, 2] < 200  # dimmed grey


def test_the_disagreement_summary_places_disagreements_near_ground_truth_boundaries():
    target = _halves(40, 60)
    target[:4] = 255
    counts = np.ones((40, 60), np.int64)
    counts[:, 29:31] = 2   # on the boundary
    counts[20, 2] = 3      # far from it
    counts[0, 0] = 2       # ignored ground truth: not in the boundary share
    summary = compare.disagreement_summary(counts, target)
    assert summary["any"] == pytest.approx((80 + 2) / 2400)
    assert summary["two"] == pytest.approx(81 / 2400)
    assert summary["three or more"] == pytest.approx(1 / 2400)
    band = compare.boundary_band(target) & (target != 255)
    assert summary["near_boundary"] == pytest.approx(72 / 73)
    assert summary["band"] == pytest.approx(band.sum() / (target != 255).sum())
    assert "near_boundary" not in compare.disagreement_summary(counts)
    assert compare.disagreement_summary(np.ones((40, 60)), target)["near_boundary"] is None


def test_each_predictions_scores_are_its_image_metrics():
    target = _halves(40, 60)
    pred = target.copy()
    pred[:, 25:30] = 1
    prediction = compare.Prediction("A", pred, 0.5, 10, "test/a")
    [row] = compare.score_predictions([prediction], target, num_classes=3)
    assert row == {"name": "A", "model": "test/a", "seconds": 0.5,
                   **image_metrics(pred, target, 3)}
    assert 0 < row["boundary_fscore"] < 1


def test_ranking_puts_the_best_miou_first_then_boundary_iou_and_unscored_last():
    rows = [{"name": "A", "mean_iou": 0.5, "boundary_iou": 0.2},
            {"name": "B", "mean_iou": None, "boundary_iou": None},
            {"name": "C", "mean_iou": 0.5, "boundary_iou": 0.4},
            {"name": "D", "mean_iou": 0.7, "boundary_iou": 0.1}]
    ranked = compare.rank(rows)
    assert [(r["rank"], r["name"]) for r in ranked] == [(1, "D"), (2, "C"), (3, "A"), (4, "B")]


def test_the_ranking_table_gives_percent_per_model():
    predictions = [compare.Prediction("HRNet", _halves(), 0.1, 10, "x/hrnet"),
                   compare.Prediction("AinnoSeg", _halves(right=0), 0.2, 10, "x/ainnoseg")]
    rows = compare.rank(compare.score_predictions(predictions, _halves(), num_classes=2))
    headers, table = compare.ranking_table(rows)
    assert headers[:3] == ["rank", "model", "mIoU %"] and len(headers) == len(table[0])
    assert table[0][:4] == [1, "HRNet", 100.0, 100.0]
    assert table[1][:2] == [2, "AinnoSeg"] and table[1][3] == 50.0
    assert rows[0]["seconds"] == 0.1 and rows[0]["model"] == "x/hrnet"


def test_scale_change_counts_what_changed_and_scores_both_with_a_ground_truth():
    single = _halves(10, 10, 0, 1)
    multi = single.copy()
    multi[:2, :5] = 2        # 10 pixels 0 -> 2
    multi[:1, 5:] = 0        # 5 pixels 1 -> 0
    names = ["road", "car", "person"]
    change = compare.scale_change(single, multi, names)
    assert change["changed"] == pytest.approx(0.15)
    assert change["transitions"] == [("road", "person", 0.1), ("car", "road", 0.05)]
    assert "single" not in change
    scored = compare.scale_change(single, multi, names, target=single)
    assert scored["single"]["mean_iou"] == 1.0 and scored["multi"]["mean_iou"] < 1.0
    assert compare.scale_change(single, single, names)["transitions"] == []
