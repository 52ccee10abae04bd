import csv
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import ainnoseg
from ainnoseg import metrics
from ainnoseg.checkpoints.files import save_checkpoint
from ainnoseg.cli import main
from ainnoseg.data import build_dataset, eval_transforms
from ainnoseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ainnoseg.engine.evaluate import evaluate, format_metrics
from ainnoseg.inference import segment
from data_trees import stripes, write_image, write_mask

CLASSES = ("background", "cat", "dog")
PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


class ReadsTheLabel(nn.Module):
    """A perfect "model" for images whose grey level is 100 * label: it
    un-normalises the image and returns one-hot logits of that label."""

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, images):
        grey = (images[:, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255
        labels = (grey / 100).round().long().clamp(0, self.num_classes - 1)
        return {"out": 10.0 * F.one_hot(labels, self.num_classes).permute(0, 3, 1, 2).float()}


def _label_tree(root, sizes, classes=CLASSES + ("absent",)):
    """A folder dataset whose images show their labels (grey = 100 * label);
    the right quarter of every mask is ignored (255)."""
    (root / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    for i, (height, width) in enumerate(sizes):
        labels = stripes(height, width, values=(0, 1, 2, 255))
        write_mask(root / "images" / f"img{i}.png", np.where(labels == 255, 0, labels * 100))
        write_mask(root / "masks" / f"img{i}.png", labels)
    return build_dataset(root, "val", transforms=eval_transforms())


def _random_tree(root, count=2, classes=CLASSES):
    (root / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    for i in range(count):
        write_image(root / "images" / f"img{i}.png", height=64, width=96, seed=i)
        write_mask(root / "masks" / f"img{i}.png", stripes(64, 96, values=(0, 1, 2, 255)))
    return root


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ainnoseg.build_model("hrnetv2_w18s", num_classes=len(CLASSES)).eval()


@pytest.fixture
def checkpoint(tmp_path, model):
    path = tmp_path / "model.pt"
    save_checkpoint({"model": model.state_dict(), "config": {"model": "hrnetv2_w18s"},
                     "class_names": list(CLASSES), "palette": PALETTE, "metrics": {},
                     "step": 0}, path)
    return path


def test_a_perfect_model_scores_one_and_absent_classes_are_nan(tmp_path):
    dataset = _label_tree(tmp_path, [(64, 96), (64, 96), (48, 80)])
    results = evaluate(ReadsTheLabel(4).eval(), dataset, batch_size=2)
    for key in ("pixel_accuracy", "mean_iou", "mean_class_accuracy", "score",
                "boundary_iou", "boundary_fscore"):
        assert results[key] == 1.0, key
    assert results["samples"] == 3
    assert list(results["class_iou"]) == ["background", "cat", "dog", "absent"]
    assert math.isnan(results["class_iou"]["absent"])
    assert math.isnan(results["class_boundary_iou"]["absent"])
    assert math.isnan(results["class_accuracy"]["absent"])
    assert all(type(v) is float for v in results["class_iou"].values())


def test_batching_does_not_change_the_metrics(tmp_path):
    dataset = _label_tree(tmp_path, [(64, 96), (48, 80), (48, 80), (64, 96)])
    model = ReadsTheLabel(2).eval()  # confuses "dog" with "cat": metrics below 1
    one = evaluate(model, dataset, batch_size=1)
    three = evaluate(model, dataset, batch_size=3, flip=True, progress=True)
    assert one["mean_iou"] < 1
    assert json.dumps(one, sort_keys=True) == json.dumps(three, sort_keys=True)


def test_evaluate_matches_metrics_of_the_summed_counts(tmp_path, model):
    """Per-image counts summed here give evaluate's metrics exactly. Both sides
    predict in float32 (amp="off"): under bf16 the convolution kernels that a
    tensor's memory layout selects round differently on some processors (an
    unsqueezed image and evaluate's stacked batch take different ones on AMD
    EPYC), and this test is about the counting, not the rounding."""
    dataset = build_dataset(_random_tree(tmp_path, count=3), "val", transforms=eval_transforms())
    k = len(CLASSES)
    cm = torch.zeros(k, k, dtype=torch.int64)
    biou, bf = torch.zeros(k, 2, dtype=torch.int64), torch.zeros(k, 4, dtype=torch.int64)
    for index in range(len(dataset)):
        image, mask = dataset[index]
        pred = segment(model, image.unsqueeze(0), amp="off")[0]
        cm += metrics.confusion_matrix(pred, mask, k, 255)
        biou += metrics.boundary_iou_counts(pred, mask, k, 255)
        bf += metrics.boundary_fscore_counts(pred, mask, k, 255)
    results = evaluate(model, dataset, amp="off")
    table = cm.numpy().astype(float)
    union = table.sum(0) + table.sum(1) - np.diag(table)
    present = union > 0
    expected_iou = np.diag(table)[present] / union[present]
    assert results["mean_iou"] == pytest.approx(expected_iou.mean())
    assert results["pixel_accuracy"] == pytest.approx(np.trace(table) / table.sum())
    assert results["mean_class_accuracy"] == pytest.approx(metrics.mean_class_accuracy(cm))
    assert results["score"] == pytest.approx(metrics.score(cm))
    assert results["boundary_iou"] == pytest.approx(
        torch.nanmean(metrics.boundary_iou(biou)).item(), nan_ok=True)
    assert results["boundary_fscore"] == pytest.approx(
        torch.nanmean(metrics.boundary_fscore(bf)).item(), nan_ok=True)
    assert list(results["class_iou"].values()) == pytest.approx(
        metrics.class_iou(cm).tolist(), nan_ok=True)


def test_format_metrics_lists_every_class_and_the_summary(tmp_path):
    dataset = _label_tree(tmp_path, [(64, 96)])
    text = format_metrics(evaluate(ReadsTheLabel(4).eval(), dataset))
    lines = text.splitlines()
    assert lines[0].split() == ["class", "IoU", "%", "Acc", "%", "BIoU", "%"]
    assert lines[1].split() == ["background", "100.00", "100.00", "100.00"]
    assert lines[4].split() == ["absent", "-", "-", "-"]
    assert "mean IoU" in text and "boundary F-score" in text and "score" in text


def test_an_unlabelled_dataset_is_refused(tmp_path):
    write_image(tmp_path / "pool" / "a.png", 64, 96)
    dataset = build_dataset(tmp_path / "pool", transforms=eval_transforms())
    with pytest.raises(ValueError, match="labelled dataset"):
        evaluate(ReadsTheLabel(2).eval(), dataset)


def test_cli_eval_prints_the_table_and_writes_json(tmp_path, checkpoint, capsys):
    root = _random_tree(tmp_path / "data")
    out = tmp_path / "reports" / "metrics.json"
    with pytest.raises(SystemExit) as exit_:
        main(["eval", str(checkpoint), str(root), "--quiet", "--json", str(out)])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert "background" in printed and "mean IoU" in printed and "dog" in printed
    saved = json.loads(out.read_text())
    assert saved["samples"] == 2 and list(saved["class_iou"]) == list(CLASSES)
    assert 0 <= saved["pixel_accuracy"] <= 1


def test_cli_eval_with_another_class_count_exits_2_with_the_reason(tmp_path, checkpoint,
                                                                  capsys):
    root = _random_tree(tmp_path / "data", classes=CLASSES + ("bird",))
    with pytest.raises(SystemExit) as exit_:
        main(["eval", str(checkpoint), str(root), "--quiet"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "predicts 3 classes" in error and "4 are expected" in error
    assert "Traceback" not in error


def test_cli_slide_without_a_crop_exits_2(tmp_path, checkpoint, capsys):
    root = _random_tree(tmp_path / "data")
    with pytest.raises(SystemExit) as exit_:
        main(["eval", str(checkpoint), str(root), "--quiet", "--mode", "slide"])
    assert exit_.value.code == 2
    assert "--crop" in capsys.readouterr().err


def test_cli_predict_writes_labels_and_overlays_and_skips_a_corrupt_file(
        tmp_path, checkpoint, capsys):
    folder = tmp_path / "photos"
    write_image(folder / "gray.png", 64, 96, suffix_mode="L")
    write_image(folder / "rgba.png", 64, 96, seed=1, suffix_mode="RGBA")
    (folder / "broken.png").write_bytes(b"this is not a PNG")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(checkpoint), str(folder), "--out", str(out),
              "--scales", "1.0", "0.5", "--flip"])
    assert exit_.value.code == 1
    assert "broken.png" in capsys.readouterr().err
    for stem in ("gray", "rgba"):
        labels = Image.open(out / f"{stem}.png")
        assert labels.mode == "L" and labels.size == (96, 64)
        assert np.asarray(labels).max() < len(CLASSES)
        overlay = Image.open(out / f"{stem}_overlay.png")
        assert overlay.mode == "RGB" and overlay.size == (96, 64)
    assert not (out / "broken.png").exists()


def test_cli_predict_of_good_files_exits_0(tmp_path, checkpoint):
    write_image(tmp_path / "a.png", 64, 96)
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(checkpoint), str(tmp_path / "a.png"), "--out", str(tmp_path / "o"),
              "--mode", "slide", "--crop", "64", "64"])
    assert exit_.value.code == 0
    assert (tmp_path / "o" / "a.png").is_file() and (tmp_path / "o" / "a_overlay.png").is_file()


def test_predict_auto_mode_slides_over_images_larger_than_four_crops():
    from ainnoseg.cli.inference import _choose_mode

    options = {"scales": (1.0,), "flip": False, "mode": "auto", "crop_size": None}
    small, large = torch.zeros(3, 100, 100), torch.zeros(3, 300, 300)
    assert _choose_mode(small, options, (64, 64))["mode"] == "whole"
    chosen = _choose_mode(large, options, (64, 64))
    assert chosen["mode"] == "slide" and chosen["crop_size"] == (64, 64)


def test_cli_eval_writes_both_confusion_matrices_and_names_the_largest(tmp_path, checkpoint,
                                                                        capsys):
    root = _random_tree(tmp_path / "data")
    out = tmp_path / "reports" / "confusion.csv"
    with pytest.raises(SystemExit) as exit_:
        main(["eval", str(checkpoint), str(root), "--quiet", "--confusion", str(out)])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert "largest confusions, all pixels:" in printed
    assert "largest confusions, boundary pixels:" in printed
    assert f"confusion matrices written to {out}" in printed
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 * len(CLASSES) ** 2
    assert {row["true"] for row in rows} == set(CLASSES)
