"""ainnoseg.analysis.pixel: one pixel's top classes in every output, OCR's
pixel-to-region weights (checked against what OCR's own attention gathers)
and what a model lacks, on built models and the released synthetic one."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import ainnoseg
from ainnoseg.analysis import inside as inspect
from ainnoseg.analysis import load_sample, pixel
from ainnoseg.data import build_dataset, eval_transforms
from ainnoseg.data.io import as_image
from ainnoseg.models.heads import ObjectAttention


@pytest.fixture(scope="module")
def trained():
    """(model, image, inside) of the released synthetic AinnoSeg on a val scene:
    its OCR weights are soft, a fresh model's are one-hot."""
    model = ainnoseg.load("synthetic/ainnoseg_w18s")
    image, _ = load_sample(build_dataset("synthetic", "val"), 0)
    return model, image, inspect.look_inside(model, image)


def image(height=70, width=100, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def model_outputs(model, picture):
    """The model's own output dict on `picture`, computed apart from look_inside."""
    tensor = eval_transforms()(as_image(picture)).as_subclass(torch.Tensor)
    with torch.no_grad():
        return {name: value[0] for name, value in model(tensor[None]).items()}


@pytest.mark.parametrize("name, keys", [("ainnoseg_w18s", {"out", "ocr", "da"}),
                                        ("danet_r18", {"out", "pam", "cam"}),
                                        ("hrnetv2_w18s", {"out"})])
def test_every_output_is_kept_at_the_image_size(name, keys):
    torch.manual_seed(0)
    model = ainnoseg.build_model(name, num_classes=3).eval()
    inside = inspect.look_inside(model, image())
    assert set(inside.logits) == keys
    assert all(tuple(logits.shape) == (3, 70, 100) for logits in inside.logits.values())
    np.testing.assert_array_equal(inside.labels, inside.logits["out"].argmax(0).numpy())


def test_top_classes_are_each_outputs_softmax_at_the_pixel(trained):
    model, picture, inside = trained
    names = model.meta.class_names
    outputs = model_outputs(model, picture)
    for point in [(100, 100), (0, 0), (255, 319), (30, 250)]:
        rows = pixel.top_classes(inside, point, names, k=3)
        assert [row["output"] for row in rows[::3]] == [
            "final", "OCR regions (aux)", "DA head"]
        assert rows[0]["class"] == names[inside.labels[point]]
        for start, key in zip(range(0, 9, 3), ("out", "ocr", "da")):
            expected = torch.softmax(outputs[key][:, point[0], point[1]], 0).sort(descending=True)
            found = rows[start:start + 3]
            assert [row["rank"] for row in found] == [1, 2, 3]
            assert [row["class"] for row in found] == [names[i] for i in expected.indices[:3]]
            np.testing.assert_allclose([row["probability"] for row in found],
                                       expected.values[:3].numpy(), rtol=1e-4, atol=1e-6)


def test_region_weights_are_what_ocr_gathers_the_regions_with(trained):
    model, picture, inside = trained
    module = next(m for m in model.modules() if isinstance(m, ObjectAttention))
    kept = {}
    hooks = [module.register_forward_hook(lambda m, inputs, out: kept.update(inputs=inputs)),
             module.to_output.register_forward_hook(
                 lambda m, inputs, out: kept.update(context=inputs[0][0]))]
    try:
        model_outputs(model, picture)
    finally:
        for hook in hooks:
            hook.remove()
    _, objects = kept["inputs"]
    with torch.no_grad():
        values = module.to_value(objects)[0].flatten(1)  # (key channels, K)
    rows, cols = kept["context"].shape[-2:]
    for y, x in [(100, 100), (0, 0), (255, 319), (131, 42)]:
        weights = pixel.region_weights(inside, (y, x))
        assert weights.shape == (len(model.meta.class_names),)
        torch.testing.assert_close(weights.sum(), torch.tensor(1.0))
        assert weights.max() < 0.9  # soft: the test would pass one-hot weights by luck less
        # the context OCR's attention computed at the pixel's cell, from these weights
        context = kept["context"][:, y * rows // 256, x * cols // 320]
        torch.testing.assert_close(values @ weights, context, rtol=1e-4, atol=1e-5)


def test_soft_region_is_strongest_on_its_own_class(trained):
    model, _, inside = trained
    sky = model.meta.class_names.index("sky")
    region = pixel.soft_region(inside, sky)
    assert region.shape == (256, 320) and 0.5 < region.max() <= 1.0 + 1e-6
    peak = np.unravel_index(region.argmax(), region.shape)
    assert inside.labels[peak] == sky
    expected = inspect.upsample(inside.regions[sky] / inside.regions[sky].max(), (256, 320))
    np.testing.assert_allclose(region, expected, rtol=1e-6)


def test_a_pixel_outside_the_image_is_a_clear_error(trained):
    _, _, inside = trained
    assert pixel.check_point(inside, (np.int64(3), 4.0)) == (3, 4)
    for point in [(256, 0), (0, 320), (-1, 5)]:
        with pytest.raises(ValueError, match="outside the 256x320 image: y goes from 0 to 255"):
            pixel.top_classes(inside, point, ["a"] * 11)
        with pytest.raises(ValueError, match="outside"):
            pixel.region_weights(inside, point)


def test_models_without_ocr_say_so():
    torch.manual_seed(0)
    danet = ainnoseg.build_model("danet_r18", num_classes=3).eval()
    inside = inspect.look_inside(danet, image())
    assert inside.region_relation is None
    with pytest.raises(ValueError, match="no OCR"):
        pixel.region_weights(inside, (1, 1))
    with pytest.raises(ValueError, match="no OCR"):
        pixel.soft_region(inside, 0)


def test_missing_parts_in_words():
    built = {name: ainnoseg.build_model(name, num_classes=3)
             for name in ("hrnetv2_w18s", "ocrnet_hrnet_w18s", "danet_r18", "ainnoseg_w18s")}
    assert pixel.missing_parts(built["hrnetv2_w18s"]) == [
        "position attention", "channel attention", "OCR"]
    assert pixel.missing_parts(built["ocrnet_hrnet_w18s"]) == [
        "position attention", "channel attention"]
    assert pixel.missing_parts(built["danet_r18"]) == ["OCR"]
    assert pixel.missing_message(built["ainnoseg_w18s"]) == ""
    assert pixel.missing_message(built["hrnetv2_w18s"], "hrnetv2_w18s") == (
        "hrnetv2_w18s has no position attention, channel attention or OCR, so it has no map "
        "of where a pixel looks, channel attention matrix or soft object regions and "
        "pixel-to-region weights.")
    danet = built["danet_r18"]
    danet.meta = SimpleNamespace(name="runs/x/best.pt", config={"model": "danet_r18"})
    assert pixel.missing_message(danet) == (
        "danet_r18 has no OCR, so it has no soft object regions and pixel-to-region weights.")
