"""Class weights from label frequencies, and the losses that use them."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from ainnoseg.config import ConfigError, from_dict
from ainnoseg.data.class_weights import class_pixel_counts, class_weights
from ainnoseg.engine.checkpointing import run_class_weight
from ainnoseg.losses import (boundary_weighted_cross_entropy, cross_entropy,
                             ohem_cross_entropy)


class Masks:
    """A dataset of given masks (images are not looked at)."""

    num_classes = 3
    class_names = ["a", "b", "c"]

    def __init__(self, masks):
        self.masks = masks

    def __len__(self):
        return len(self.masks)

    def __getitem__(self, index):
        return None, self.masks[index]


def test_pixel_counts_skip_ignored_pixels():
    masks = [torch.tensor([[0, 0, 1], [255, 1, 0]]), torch.tensor([[0, 255, 255]])]
    assert class_pixel_counts(Masks(masks)).tolist() == [4, 2, 0]


def test_median_frequency_and_enet_weights_follow_their_formulas():
    counts = torch.tensor([70, 20, 10, 0])
    median = class_weights(counts, "median_frequency")
    assert median.tolist() == pytest.approx([0.2 / 0.7, 1.0, 2.0, 0.0])
    enet = class_weights(counts, "enet")
    expected = [1 / math.log(1.02 + p) for p in (0.7, 0.2, 0.1)] + [0.0]
    assert enet.tolist() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="no labelled pixels"):
        class_weights(torch.zeros(3), "enet")
    with pytest.raises(ValueError, match="median_frequency"):
        class_weights(counts, "inverse")


def test_weighted_cross_entropy_is_the_weighted_mean_over_labelled_pixels():
    logits = torch.randn(2, 3, 5, 6)
    target = torch.randint(0, 3, (2, 5, 6))
    target[0, 0] = 255
    weight = torch.tensor([0.5, 2.0, 4.0])
    pixel = F.cross_entropy(logits, target, ignore_index=255, reduction="none")
    w = torch.where(target == 255, 0.0, weight[target.clamp(max=2)])
    expected = (pixel * w).sum() / w.sum()
    assert cross_entropy(logits, target, class_weight=weight) == pytest.approx(expected.item())
    # a boundary weight of 1 leaves the class-weighted mean
    boundary = boundary_weighted_cross_entropy(logits, target, weight=1.0, class_weight=weight)
    assert boundary == pytest.approx(expected.item(), rel=1e-6)
    # OHEM keeping every pixel is the class-weighted mean too
    ohem = ohem_cross_entropy(logits, target, threshold=1.0, class_weight=weight)
    assert ohem == pytest.approx(expected.item(), rel=1e-6)
    assert cross_entropy(logits, target) == pytest.approx(
        F.cross_entropy(logits, target, ignore_index=255).item())


def test_the_config_key_is_checked_and_the_weights_are_kept_in_the_run(tmp_path):
    with pytest.raises(ConfigError, match="class_weighting"):
        from_dict({"class_weighting": "inverse"})
    config = from_dict({"class_weighting": "enet", "data": "synthetic"})
    assert run_class_weight(from_dict({}), tmp_path) is None
    record = {"method": "enet", "weights": [1.0] * 11}
    (tmp_path / "class_weights.json").write_text(json.dumps(record))
    assert run_class_weight(config, tmp_path).tolist() == [1.0] * 11  # a resumed run's own
