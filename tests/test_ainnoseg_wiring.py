"""How AinnoSeg joins its parts (arXiv 2007.10591, our reading of Sec. 3.1):
HRNet features -> dual attention -> OCR, where OCR refines the dual-attention
output (the sum of the PAM and CAM branches, its pixel representation) with
soft object regions predicted from the HRNet features themselves.

The tests watch a model made by the public builder through hooks on its
building blocks (the backbone, `DualAttention`, `OCRHead`), found by type, so
they hold however the head assembles them.
"""

import pytest
import torch

import ainnoseg
from ainnoseg.models.heads import DualAttention, OCRHead
from model_helpers import calibrate_batch_norms, with_attention_on

SIZE = (64, 64)


def _built(name, **options):
    torch.manual_seed(0)
    model = with_attention_on(ainnoseg.build_model(name, num_classes=5, **options))
    return calibrate_batch_norms(model, torch.randn(2, 3, *SIZE))


@pytest.fixture(scope="module")
def model():
    return _built("ainnoseg_w18s")


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(1)
    return torch.randn(1, 3, *SIZE)


def _only(model, kind):
    found = [module for module in model.modules() if isinstance(module, kind)]
    assert len(found) <= 1, f"expected at most one {kind.__name__}, found {len(found)}"
    return found[0] if found else None


def _run(model, images, replace_attention=None):
    """One eval forward; returns what the backbone, the dual attention (if
    any) and the OCR head gave and took, and the head's logits, aux outputs
    included. `replace_attention(pam, cam)` swaps in another dual-attention output."""
    seen = {}

    def keep(name):
        def hook(module, inputs, output):
            seen[name] = output
        return hook

    def attention(module, inputs, output):
        seen["attention"] = output
        if replace_attention is not None:
            return replace_attention(*output)

    def ocr_inputs(module, inputs):
        seen["ocr_regions_from"], seen["ocr_pixels_from"] = inputs

    ocr, dual_attention = _only(model, OCRHead), _only(model, DualAttention)
    hooks = [model.backbone.register_forward_hook(keep("features")),
             model.head.register_forward_hook(keep("logits")),
             ocr.register_forward_pre_hook(ocr_inputs), ocr.register_forward_hook(keep("ocr"))]
    if dual_attention is not None:
        hooks.append(dual_attention.register_forward_hook(attention))
    try:
        with torch.no_grad():
            model(images)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def test_ocr_refines_the_dual_attention_output_with_regions_from_the_hrnet_features(
        model, images):
    """The registered AinnoSeg: OCR's pixels are the DA output and the HRNet
    features side by side, in that order."""
    seen = _run(model, images)
    pam, cam = seen["attention"]
    assert torch.equal(seen["ocr_pixels_from"], torch.cat([pam + cam, seen["features"]], dim=1))
    assert torch.equal(seen["ocr_regions_from"], seen["features"])
    # The final logits are OCR's; its soft regions are the "ocr" aux logits.
    assert torch.equal(seen["logits"]["out"], seen["ocr"]["out"])
    assert torch.equal(seen["logits"]["ocr"], seen["ocr"]["ocr"])


def test_the_soft_regions_do_not_depend_on_the_dual_attention(model, images):
    """Another dual-attention output changes the final and the DA logits, and
    leaves the soft object regions exactly as they were."""
    plain = _run(model, images)["logits"]
    changed = _run(model, images, lambda pam, cam: (2 * pam, cam.flip(-1)))["logits"]
    assert torch.equal(changed["ocr"], plain["ocr"])
    for name in ("out", "da"):
        assert not torch.allclose(changed[name], plain[name], rtol=1e-3, atol=1e-3), name


def test_the_head_takes_the_sum_of_the_two_branches(model, images):
    """Only PAM + CAM reaches the logits: handing over the sum as one branch
    and zeros as the other changes nothing, while dropping a branch does."""
    plain = _run(model, images)["logits"]
    summed = _run(model, images, lambda pam, cam: (pam + cam, torch.zeros_like(cam)))["logits"]
    pam_only = _run(model, images, lambda pam, cam: (pam, torch.zeros_like(cam)))["logits"]
    for name in ("out", "da", "ocr"):
        assert torch.equal(summed[name], plain[name]), name
    for name in ("out", "da"):
        assert not torch.allclose(pam_only[name], plain[name], rtol=1e-3, atol=1e-3), name


def test_ocr_pixels_da_take_the_dual_attention_output_alone(images):
    """ocr_pixels="da" (the literal reading, and the checkpoints saved before
    the option): OCR's pixels are the DA output; the soft regions are unchanged."""
    model = _built("ainnoseg_w18s", ocr_pixels="da", da_channels=32)
    seen = _run(model, images)
    pam, cam = seen["attention"]
    assert torch.equal(seen["ocr_pixels_from"], pam + cam)
    assert torch.equal(seen["ocr_regions_from"], seen["features"])
    assert pam.shape[1] == 32
    assert model.head.ocr.pixels[0].weight.shape[1] == 32


def test_hrnet_ocr_refines_the_hrnet_features_themselves(images):
    """The baseline AinnoSeg extends: both OCR inputs are the HRNet features."""
    seen = _run(_built("ocrnet_hrnet_w18s"), images)
    assert "attention" not in seen
    assert torch.equal(seen["ocr_regions_from"], seen["features"])
    assert torch.equal(seen["ocr_pixels_from"], seen["features"])
