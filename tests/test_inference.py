import pytest
import torch
from torch import nn

import ainnoseg
from ainnoseg import inference

NUM_CLASSES = 3


class Pointwise(nn.Module):
    """A model without spatial context: each pixel's logits depend on that pixel
    only, so windows, padding and flips cannot change its predictions."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, NUM_CLASSES, 1)
        self.calls = []

    def forward(self, images):
        self.calls.append(tuple(images.shape))
        return {"out": self.conv(images)}


def predict(model, images, **options):
    """float32 predictions (amp="auto" picks bf16 on CPUs with AMX or
    AVX512-BF16, whose kernels round differently from one processor and one
    memory layout to another): the exact comparisons below need them."""
    return inference.predict(model, images, **{"amp": "off", **options})


def segment(model, images, **options):
    return inference.segment(model, images, **{"amp": "off", **options})


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ainnoseg.build_model("hrnetv2_w18s", num_classes=NUM_CLASSES).eval()


@pytest.fixture
def images():
    return torch.randn(2, 3, 64, 96)


def _softmax(model, images):
    with torch.no_grad():
        return model(images)["out"].softmax(1)


def test_single_scale_without_flip_is_the_plain_forward_softmax(model, images):
    probs = predict(model, images)
    assert probs.dtype == torch.float32
    assert not probs.is_inference()  # callers may edit it in place
    assert torch.equal(probs, _softmax(model, images))
    assert torch.equal(segment(model, images), probs.argmax(1))


def test_flip_averages_the_flipped_back_prediction_of_the_mirror(model, images):
    expected = (_softmax(model, images) + _softmax(model, images.flip(-1)).flip(-1)) / 2
    torch.testing.assert_close(predict(model, images, flip=True), expected,
                               atol=1e-5, rtol=1e-5)


def test_flip_is_batched_with_the_original_in_one_forward(images):
    model = Pointwise().eval()
    predict(model, images, scales=(0.5, 1.0), flip=True)
    assert model.calls == [(4, 3, 32, 48), (4, 3, 64, 96)]


def test_a_model_without_context_gives_the_same_probabilities_flipped(images):
    model = Pointwise().eval()
    torch.testing.assert_close(predict(model, images, flip=True), predict(model, images))


def test_multi_scale_keeps_the_input_size_and_averages_the_scales(model, images):
    scales = (0.5, 1.0, 1.5)
    probs = predict(model, images, scales=scales)
    assert probs.shape == (2, NUM_CLASSES, 64, 96)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 64, 96))
    separate = sum(predict(model, images, scales=(s,)) for s in scales) / len(scales)
    torch.testing.assert_close(probs, separate)


def test_scaled_views_have_the_rounded_scaled_size(images):
    model = Pointwise().eval()
    predict(model, images[:, :, :63, :95], scales=(0.75, 1.25))
    assert model.calls == [(2, 3, 47, 71), (2, 3, 79, 119)]


@pytest.mark.parametrize("flip", [False, True])
def test_slide_with_a_crop_covering_the_image_equals_whole(model, images, flip):
    whole = predict(model, images, flip=flip)
    slide = predict(model, images, flip=flip, mode="slide", crop_size=(64, 96))
    assert torch.equal(slide, whole)


def test_slide_with_smaller_windows_on_odd_sizes(model):
    images = torch.randn(1, 3, 65, 97)
    probs = predict(model, images, mode="slide", crop_size=(48, 64), flip=True)
    assert probs.shape == (1, NUM_CLASSES, 65, 97)
    assert torch.isfinite(probs).all()
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 65, 97))


def test_slide_windows_overlap_by_two_thirds_and_stitch_back_exactly():
    model = Pointwise().eval()
    images = torch.randn(1, 3, 65, 97)
    slide = predict(model, images, mode="slide", crop_size=(48, 64))
    # Heights 65 with window 48 and stride 32: tops 0, 17; widths 97, window 64,
    # stride 42: lefts 0, 33. Every window has the crop size.
    assert model.calls == [(1, 3, 48, 64)] * 4
    torch.testing.assert_close(slide, predict(model, images))


def test_slide_pads_images_smaller_than_the_crop():
    model = Pointwise().eval()
    images = torch.randn(1, 3, 40, 50)
    slide = predict(model, images, mode="slide", crop_size=(64, 64), stride=(32, 32))
    assert model.calls == [(1, 3, 64, 64)]
    torch.testing.assert_close(slide, predict(model, images))


def test_bf16_autocast_runs_and_stays_close(images):
    model = Pointwise().eval()
    probs = predict(model, images, amp="bf16")
    assert probs.dtype == torch.float32
    torch.testing.assert_close(probs, predict(model, images), atol=2e-2, rtol=0)


def test_a_model_in_training_mode_is_refused(images):
    model = Pointwise().train()
    with pytest.raises(RuntimeError, match=r"call model\.eval\(\) first"):
        predict(model, images)


@pytest.mark.parametrize("options, message", [
    (dict(mode="slide"), "needs crop_size"),
    (dict(mode="tiles"), "unknown mode"),
    (dict(scales=(0.0,)), "scales must be positive"),
    (dict(amp="fp8"), "amp must be"),
    (dict(mode="slide", crop_size=(32, 32), stride=0), "stride must be"),
])
def test_bad_options_are_explained(images, options, message):
    with pytest.raises(ValueError, match=message):
        predict(Pointwise().eval(), images, **options)


def test_unnormalised_or_unbatched_images_are_explained():
    model = Pointwise().eval()
    with pytest.raises(ValueError, match="eval_transforms"):
        predict(model, torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        predict(model, torch.zeros(3, 8, 8))

