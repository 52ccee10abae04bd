import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from ainnoseg import metrics

IGNORE = 255
K = 6


def _random_maps(seed, shape=(40, 50)):
    """Blocky random label maps with ignore pixels; class 5 is absent from both."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, K - 1, (shape[0] // 5, shape[1] // 5), generator=generator)
    target = coarse.repeat_interleave(5, 0).repeat_interleave(5, 1)
    pred = target.clone()
    noise = torch.rand(shape, generator=generator) < 0.3
    pred[noise] = torch.randint(0, K - 1, shape, generator=generator)[noise]
    target[torch.rand(shape, generator=generator) < 0.1] = IGNORE
    pred[0, 0] = 4  # class 4 may then appear in the prediction only
    target[target == 4] = 3
    return pred, target


def _loop_region_metrics(preds, targets):
    """Independent per-class loop over all images."""
    inter, union, correct, truth = (np.zeros(K) for _ in range(4))
    total_correct = total = 0
    for pred, target in zip(preds, targets):
        pred, target = pred.numpy(), target.numpy()
        valid = target != IGNORE
        total_correct += (pred[valid] == target[valid]).sum()
        total += valid.sum()
        for c in range(K):
            p, t = (pred == c) & valid, (target == c) & valid
            inter[c] += (p & t).sum()
            union[c] += (p | t).sum()
            truth[c] += t.sum()
    iou = [inter[c] / union[c] if union[c] else math.nan for c in range(K)]
    acc = [inter[c] / truth[c] if truth[c] else math.nan for c in range(K)]
    return total_correct / total, iou, acc


def test_region_metrics_match_a_per_class_loop():
    pairs = [_random_maps(seed) for seed in range(3)]
    cm = sum(metrics.confusion_matrix(p, t, K, IGNORE) for p, t in pairs)
    accuracy, iou, class_acc = _loop_region_metrics(*zip(*pairs))
    assert metrics.pixel_accuracy(cm) == pytest.approx(accuracy)
    np.testing.assert_allclose(metrics.class_iou(cm).numpy(), iou)
    np.testing.assert_allclose(metrics.class_accuracy(cm).numpy(), class_acc)
    assert math.isnan(iou[5]) and iou[4] == 0.0  # absent: NaN; predicted only: 0
    assert metrics.mean_iou(cm) == pytest.approx(np.nanmean(iou))
    assert metrics.mean_class_accuracy(cm) == pytest.approx(np.nanmean(class_acc))
    assert metrics.score(cm) == pytest.approx((accuracy + np.nanmean(iou)) / 2)


def test_confusion_matrix_rejects_labels_outside_the_classes():
    with pytest.raises(ValueError, match="outside 0..5"):
        metrics.confusion_matrix(torch.zeros(3, 3), torch.full((3, 3), 7), K, IGNORE)


def _scipy_band(mask, width):
    """Inner band as the Boundary IoU reference computes it (zero border)."""
    padded = np.pad(mask, width, constant_values=False)
    eroded = ndimage.binary_erosion(padded, np.ones((3, 3)), iterations=width)
    return mask & ~eroded[width:-width, width:-width]


# The default band and tolerance of a 40x50 image are 1 px; 3 px checks the
# square erosion and the disk beyond their smallest size.
@pytest.mark.parametrize("width", [None, 3])
def test_boundary_iou_matches_an_independent_implementation(width):
    pairs = [_random_maps(seed) for seed in range(3)]
    default = width is None
    width = max(1, round(0.02 * math.hypot(40, 50))) if default else width
    inter, union = np.zeros(K), np.zeros(K)
    for pred, target in pairs:
        valid = target.numpy() != IGNORE
        for c in range(K):
            g = _scipy_band((target.numpy() == c) & valid, width)
            p = _scipy_band((pred.numpy() == c) & valid, width)
            inter[c] += (g & p).sum()
            union[c] += (g | p).sum()
    counts = sum(metrics.boundary_iou_counts(p, t, K, IGNORE, width=None if default else width)
                 for p, t in pairs)
    expected = [inter[c] / union[c] if union[c] else math.nan for c in range(K)]
    np.testing.assert_allclose(metrics.boundary_iou(counts).numpy(), expected)


@pytest.mark.parametrize("tolerance", [None, 3])
def test_boundary_fscore_matches_an_independent_implementation(tolerance):
    pairs = [_random_maps(seed) for seed in range(2)]
    default = tolerance is None
    tolerance = max(1, math.ceil(0.008 * math.hypot(40, 50))) if default else tolerance
    yy, xx = np.mgrid[-tolerance:tolerance + 1, -tolerance:tolerance + 1]
    disk = xx ** 2 + yy ** 2 <= tolerance ** 2
    sums = np.zeros((K, 4))
    for pred, target in pairs:
        valid = target.numpy() != IGNORE
        for c in range(K):
            g = _scipy_band((target.numpy() == c) & valid, 1)
            p = _scipy_band((pred.numpy() == c) & valid, 1)
            sums[c] += [(p & ndimage.binary_dilation(g, disk)).sum(), p.sum(),
                        (g & ndimage.binary_dilation(p, disk)).sum(), g.sum()]
    np.testing.assert_array_equal(
        sum(metrics.boundary_fscore_counts(p, t, K, IGNORE, tolerance=None if default else tolerance)
            for p, t in pairs).numpy(), sums)
    fscore = metrics.boundary_fscore(torch.from_numpy(sums).long()).numpy()
    for c in range(K):
        if sums[c, 1] + sums[c, 3] == 0:
            assert math.isnan(fscore[c])
            continue
        precision = sums[c, 0] / sums[c, 1] if sums[c, 1] else 0.0
        recall = sums[c, 2] / sums[c, 3] if sums[c, 3] else 0.0
        expected = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        assert fscore[c] == pytest.approx(expected)


def test_perfect_prediction_scores_one_everywhere():
    _, target = _random_maps(0)
    pred = target.clone()
    pred[pred == IGNORE] = 0
    cm = metrics.confusion_matrix(pred, target, K, IGNORE)
    assert metrics.pixel_accuracy(cm) == 1.0 and metrics.mean_iou(cm) == 1.0
    assert np.nanmin(metrics.boundary_iou(metrics.boundary_iou_counts(pred, target, K)).numpy()) == 1.0
    assert np.nanmin(metrics.boundary_fscore(metrics.boundary_fscore_counts(pred, target, K)).numpy()) == 1.0


def test_the_boundary_band_is_two_percent_of_the_diagonal_and_at_least_one_pixel():
    assert metrics.boundary_width(360, 480) == 12    # CamVid: a 600 px diagonal
    assert metrics.boundary_width(10, 10) == 1
    _, target = _random_maps(0)
    pred = torch.zeros_like(target)
    assert torch.equal(metrics.boundary_iou_counts(pred, target, K, IGNORE),
                       metrics.boundary_iou_counts(pred, target, K, IGNORE,
                                                   width=metrics.boundary_width(40, 50)))


def test_the_counts_of_a_batch_are_those_of_its_images_summed_and_summarised():
    pairs = [_random_maps(seed) for seed in range(3)]
    preds, targets = (torch.stack(maps) for maps in zip(*pairs))
    totals = metrics.empty_counts(K)
    for pred, target in pairs:
        counts = metrics.evaluation_counts(pred, target, K, IGNORE)
        totals = [total + count for total, count in zip(totals, counts)]
    batch = metrics.evaluation_counts(preds, targets, K, IGNORE)
    assert all(torch.equal(a, b) for a, b in zip(batch, totals))
    cm, biou, bf = totals
    names = [f"class {c}" for c in range(K)]
    summary = metrics.summary(totals, names)
    assert summary["mean_iou"] == metrics.mean_iou(cm)
    assert summary["score"] == metrics.score(cm)
    assert summary["boundary_iou"] == pytest.approx(np.nanmean(metrics.boundary_iou(biou).numpy()))
    assert summary["boundary_fscore"] == pytest.approx(
        np.nanmean(metrics.boundary_fscore(bf).numpy()))
    assert list(summary["class_iou"]) == names and math.isnan(summary["class_iou"]["class 5"])
    assert summary["class_boundary_fscore"]["class 0"] == metrics.boundary_fscore(bf)[0].item()
