import pytest
import torch
import torch.nn.functional as F

import ainnoseg
from ainnoseg.losses import (
    SegmentationLoss, boundary_mask, boundary_weighted_cross_entropy, ohem_cross_entropy)

IGNORE = 255


def _logits_and_target(classes=4, size=(2, 12, 10)):
    logits = torch.randn(size[0], classes, *size[1:])
    target = torch.randint(0, classes, size)
    target[:, :3] = IGNORE
    return logits, target


def test_ainnoseg_uses_the_papers_weights():
    model = ainnoseg.build_model("ainnoseg_w18s", num_classes=3)
    assert model.loss_weights == {"out": 1.0, "ocr": 0.3, "da": 0.1}
    assert ainnoseg.build_model("ocrnet_hrnet_w18s", num_classes=3).loss_weights == {
        "out": 1.0, "ocr": 0.4}
    assert ainnoseg.build_model("danet_r18", num_classes=3).loss_weights == {
        "out": 1.0, "pam": 1.0, "cam": 1.0}


def test_total_is_the_weighted_sum_of_cross_entropies_without_ignored_pixels():
    outputs = {name: _logits_and_target()[0] for name in ("out", "ocr", "da")}
    _, target = _logits_and_target()
    loss = SegmentationLoss({"out": 1.0, "ocr": 0.3, "da": 0.1}, ignore_index=IGNORE)
    total, terms = loss(outputs, target)
    valid = target != IGNORE
    expected = {}
    for name, logits in outputs.items():
        per_pixel = -F.log_softmax(logits, 1).gather(1, target.clamp(max=3).unsqueeze(1)).squeeze(1)
        expected[name] = per_pixel[valid].mean()
        torch.testing.assert_close(terms[name], expected[name])
    torch.testing.assert_close(
        total, expected["out"] + 0.3 * expected["ocr"] + 0.1 * expected["da"])


def test_logits_smaller_than_the_label_are_upsampled():
    logits, target = _logits_and_target(size=(1, 16, 16))
    small = F.interpolate(logits, size=(8, 8))
    total, _ = SegmentationLoss({"out": 1.0})({"out": small}, target)
    assert torch.isfinite(total)


def test_missing_outputs_are_named():
    with pytest.raises(KeyError, match=r"build_loss\(model\)"):
        SegmentationLoss({"out": 1.0, "da": 0.1})({"out": torch.randn(1, 2, 4, 4)},
                                                  torch.zeros(1, 4, 4, dtype=torch.long))


def test_build_loss_refuses_weights_for_outputs_the_model_lacks():
    model = ainnoseg.build_model("hrnetv2_w18s", num_classes=3)
    with pytest.raises(ValueError, match="does not have"):
        ainnoseg.build_loss(model, weights={"out": 1.0, "da": 0.1})
    with pytest.raises(ValueError, match="unknown loss criterion"):
        ainnoseg.build_loss(model, criterion="dice")


def test_boundary_mask_marks_pixels_near_label_changes():
    target = torch.zeros(1, 9, 9, dtype=torch.long)
    target[:, :, 5:] = 1
    mask = boundary_mask(target, width=2)
    assert mask[0, :, 3:7].all()
    assert not mask[0, :, :3].any() and not mask[0, :, 7:].any()


def test_boundary_weighted_ce_weights_boundary_pixels_up():
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[:, :, 4:] = 1
    logits = torch.zeros(1, 2, 8, 8)
    logits[:, 1, :, 0] = 5.0  # one wrong column, far from the boundary
    plain = boundary_weighted_cross_entropy(logits, target, width=1, weight=1.0)
    torch.testing.assert_close(plain, F.cross_entropy(logits, target))
    weighted = boundary_weighted_cross_entropy(logits, target, width=1, weight=5.0)
    assert weighted < plain  # the far error now weighs less than the boundary pixels


def test_ohem_keeps_at_least_min_kept_hardest_pixels():
    logits, target = _logits_and_target(size=(1, 20, 20))
    per_pixel = F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none")
    hardest = per_pixel[target != IGNORE].sort(descending=True).values
    # threshold 0 keeps exactly the min_kept hardest pixels
    torch.testing.assert_close(
        ohem_cross_entropy(logits, target, IGNORE, threshold=0.0, min_kept=50), hardest[:50].mean())
    # threshold 1 keeps every pixel
    torch.testing.assert_close(
        ohem_cross_entropy(logits, target, IGNORE, threshold=1.0, min_kept=50), hardest.mean())


@pytest.mark.parametrize("criterion", ["ce", "boundary_ce", "ohem"])
def test_every_criterion_ignores_the_ignore_index(criterion):
    logits, target = _logits_and_target()
    loss = SegmentationLoss({"out": 1.0}, criterion=criterion, ignore_index=IGNORE)
    changed = logits.clone()
    changed[:, :, :3] = torch.randn_like(changed[:, :, :3]) * 100  # only ignored rows change
    torch.testing.assert_close(loss({"out": logits}, target)[0], loss({"out": changed}, target)[0])


@pytest.mark.parametrize("criterion", ["ce", "boundary_ce", "ohem"])
def test_a_fully_ignored_batch_gives_zero_loss_not_nan(criterion):
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    target = torch.full((1, 4, 4), IGNORE)
    total, _ = SegmentationLoss({"out": 1.0}, criterion=criterion)({"out": logits}, target)
    total.backward()
    assert total.item() == 0.0 and torch.isfinite(logits.grad).all()
