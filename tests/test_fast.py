import pytest
import torch
from torch import nn

import ainnoseg
from ainnoseg.inference.fast import FastSegmentor, fold_batch_norms, optimize_for_inference
from model_helpers import calibrate_batch_norms, with_attention_on

FAMILIES = ("hrnetv2_w18s", "ocrnet_hrnet_w18s", "hrnet_da_w18s", "ainnoseg_w18s", "danet_r18")


def _with_random_batch_norms(model):
    """`model` in eval mode, its batch norms with random scales, shifts and
    statistics, so that none is the identity and folding has something to get wrong."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
    return model.eval()


def _model_with_trained_looking_batch_norms(name, seed=0):
    """Random weights, attention switched on, batch norms with random scales
    and shifts and the statistics of a batch: activations stay near unit
    scale, so position attention is a soft average, not a hard argmax."""
    torch.manual_seed(seed)
    model = with_attention_on(ainnoseg.build_model(name, num_classes=5))
    _with_random_batch_norms(model)
    return calibrate_batch_norms(model, torch.randn(2, 3, 64, 96))


def _batch_norms(model):
    return sum(isinstance(module, nn.BatchNorm2d) for module in model.modules())


@pytest.mark.parametrize("name", FAMILIES)
def test_folding_every_batch_norm_keeps_the_output(name):
    model = _model_with_trained_looking_batch_norms(name)
    images = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = model(images)["out"]
    count = _batch_norms(model)
    assert fold_batch_norms(model) == count
    assert _batch_norms(model) == 0
    with torch.no_grad():
        folded = model(images)["out"]
    scale = expected.abs().max()
    torch.testing.assert_close(folded / scale, expected / scale, atol=2e-4, rtol=0)


def test_folding_needs_eval_mode():
    model = ainnoseg.build_model("hrnetv2_w18s", num_classes=3)
    with pytest.raises(RuntimeError, match=r"model\.eval\(\)"):
        fold_batch_norms(model)


def test_optimized_copy_matches_and_leaves_the_model_alone():
    model = _model_with_trained_looking_batch_norms("ainnoseg_w18s")
    before = {key: value.clone() for key, value in model.state_dict().items()}
    fast = optimize_for_inference(model, amp="off")
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(images)["out"]
        logits = fast(images)["out"]
    assert logits.dtype == torch.float32 and logits.shape == expected.shape
    scale = expected.abs().max()
    torch.testing.assert_close(logits / scale, expected / scale, atol=2e-4, rtol=0)
    assert _batch_norms(model) > 0
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    assert fast.num_classes == 5 and fast.stride == model.stride


def test_bf16_copy_returns_float32_close_to_float32():
    # Not calibrated: at unit scale a randomly initialised HRNet amplifies
    # rounding through its depth (bf16 then moves its logits by 7 %), which
    # says nothing of bf16 on a trained one; here they move by under 1 %.
    torch.manual_seed(0)
    model = _with_random_batch_norms(ainnoseg.build_model("hrnetv2_w18s", num_classes=5))
    fast = optimize_for_inference(model, amp="bf16")
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        logits, expected = fast(images)["out"], model(images)["out"]
    assert logits.dtype == torch.float32
    assert ((logits - expected).abs().mean() / expected.abs().mean()) < 0.02
    assert (logits.argmax(1) == expected.argmax(1)).float().mean() > 0.95


def test_optimized_copy_refuses_training():
    fast = optimize_for_inference(ainnoseg.build_model("hrnetv2_w18s", num_classes=3).eval())
    assert isinstance(fast, FastSegmentor) and not fast.training
    with pytest.raises(RuntimeError, match="inference only"):
        fast.train()


def test_output_size_of_the_input_size_changes_nothing():
    model = ainnoseg.build_model("hrnetv2_w18s", num_classes=3).eval()
    images = torch.randn(1, 3, 61, 90)
    with torch.no_grad():
        assert torch.equal(model(images, output_size=(61, 90))["out"], model(images)["out"])


def test_output_size_interpolates_once_to_the_wanted_size():
    """Half-size input, full-size logits: close to upsampling the half-size logits."""
    model = ainnoseg.build_model("hrnetv2_w18s", num_classes=3).eval()
    images = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        direct = model(images, output_size=(128, 192))["out"]
        twice = nn.functional.interpolate(model(images)["out"], size=(128, 192),
                                          mode="bilinear", align_corners=False)
    assert direct.shape == (1, 3, 128, 192)
    scale = twice.abs().max()
    # Both are bilinear upsamplings of the same 1/4-resolution map; they part
    # only where the second interpolation smooths the first.
    assert ((direct - twice).abs() / scale).mean() < 0.02
