import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from ainnoseg.analysis.previews import mosaic_preview, training_batch, training_view
from ainnoseg.data.transforms import to_uint8
from ainnoseg.data import DataError, mosaic_sample
from ainnoseg.data.transforms import eval_transforms


@pytest.fixture(scope="module")
def dataset():
    return training_view("synthetic", crop_size=(48, 64), scale=(64, 80))


def test_to_uint8_undoes_the_normalisation():
    pixels = torch.randint(0, 256, (3, 5, 7), dtype=torch.uint8)
    normalised = eval_transforms()(tv_tensors.Image(pixels))
    np.testing.assert_array_equal(to_uint8(normalised),
                                  pixels.permute(1, 2, 0).numpy())


def test_a_mosaic_preview_is_mosaic_sample_with_its_four_sources(dataset):
    preview = mosaic_preview(dataset, 17, seed=3)
    image, mask = mosaic_sample(dataset, 17, seed=3)
    np.testing.assert_array_equal(preview["image"], to_uint8(image))
    np.testing.assert_array_equal(preview["mask"], mask.numpy())
    assert [s["quadrant"] for s in preview["sources"]] == [
        "top-left", "top-right", "bottom-left", "bottom-right"]
    assert all(s["image"].shape == (48, 64, 3) and s["mask"].shape == (48, 64)
               for s in preview["sources"])
    again = mosaic_preview(dataset, 17, seed=3)
    np.testing.assert_array_equal(preview["image"], again["image"])
    assert [s["index"] for s in preview["sources"]] == [s["index"] for s in again["sources"]]


def test_the_top_left_source_fills_the_top_left_of_the_mosaic(dataset):
    preview = mosaic_preview(dataset, 4, seed=0, centre_range=(1.0, 1.0))
    # The centre in the middle of the 2x canvas: each source fills a quadrant
    # whole, and the canvas is halved.
    source = preview["sources"][0]["mask"]
    assert (preview["mask"][:24, :32] == source[::2, ::2]).mean() > 0.9


def test_a_training_batch_adds_mosaics_at_the_ratio(dataset):
    none = training_batch(dataset, batch_size=4, ratio=0.0, seed=1)
    assert none["originals"] == 4 and none["mosaics"] == 0 and len(none["images"]) == 4
    every = training_batch(dataset, batch_size=4, ratio=1.0, seed=1)
    assert every["mosaics"] == 4 and len(every["masks"]) == 8
    np.testing.assert_array_equal(every["images"][0], none["images"][0])


def test_training_view_refuses_unlabeled_folders_and_bad_ranges(tmp_path):
    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    with pytest.raises(DataError, match="needs a labelled dataset"):
        training_view(tmp_path)
    with pytest.raises(ValueError, match="ratio_range"):
        training_view("synthetic", ratio_range=(1.5, 0.5))
