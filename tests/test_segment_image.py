"""`ainnoseg.segment_image`: one call from any image a user holds to class indices."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

import ainnoseg
from ainnoseg.checkpoints import ModelMeta, save_checkpoint
from ainnoseg.data import DataError, eval_transforms, read_image
from ainnoseg.inference import predict, segment
from data_trees import write_image

CLASSES = ["background", "cat", "dog"]
PALETTE = [(0, 0, 0), (255, 0, 0), (0, 0, 255)]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint with a small training crop."""
    torch.manual_seed(0)
    network = ainnoseg.build_model("hrnetv2_w18s", num_classes=len(CLASSES))
    path = tmp_path_factory.mktemp("checkpoint") / "model.pt"
    save_checkpoint({"model": network.state_dict(), "class_names": CLASSES, "palette": PALETTE,
                     "config": {"model": "hrnetv2_w18s", "crop_size": [32, 48]},
                     "metrics": {}, "step": 0}, path)
    return path


@pytest.fixture(scope="module")
def model(checkpoint):
    """The checkpoint loaded as a user would."""
    return ainnoseg.load(checkpoint)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    write_image(path, height=48, width=64, seed=3)
    return path


def _expected(model, pixels, **options):
    """What predict gives for the normalised batch (float32, so exact)."""
    batch = eval_transforms()(pixels).unsqueeze(0)
    return segment(model, batch, amp="off", **options)[0]


def test_load_gives_the_model_one_metadata_object(model, checkpoint):
    meta = model.meta
    assert isinstance(meta, ModelMeta) and meta.name == str(checkpoint)
    assert meta.class_names == CLASSES and meta.num_classes == len(CLASSES)
    assert meta.palette == PALETTE
    assert meta.ignore_index == 255
    assert meta.config["crop_size"] == [32, 48]
    assert meta.release is None and meta.checkpoint_path == checkpoint
    assert not model.training
    loose = {"name", "class_names", "palette", "ignore_index", "config", "release",
             "checkpoint_path"} & set(vars(model))
    assert not loose, f"load hangs loose attributes on the model: {sorted(loose)}"
    assert ainnoseg.build_model("hrnetv2_w18s", num_classes=3).meta is None


def test_every_kind_of_input_gives_the_labels_of_its_rgb_pixels(model, photo):
    pixels = read_image(photo)
    expected = _expected(model, pixels)
    array = pixels.permute(1, 2, 0).numpy()
    inputs = {
        "path": photo, "str path": str(photo), "PIL RGB": Image.open(photo),
        "PIL RGBA": Image.open(photo).convert("RGBA"), "array": array,
        "array RGBA": np.dstack([array, np.full(array.shape[:2], 255, np.uint8)]),
        "tensor": pixels.as_subclass(torch.Tensor),
    }
    for name, image in inputs.items():
        labels = ainnoseg.segment_image(model, image, amp="off")
        assert labels.shape == (48, 64) and labels.dtype == torch.int64, name
        assert torch.equal(labels, expected), name


def test_grayscale_and_16_bit_images_are_converted_to_rgb(model):
    grey = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))
    as_rgb = tv_tensors.Image(torch.from_numpy(grey).expand(3, -1, -1))
    expected = _expected(model, as_rgb)
    wide = Image.fromarray(grey.astype(np.uint16) * 257)  # 16-bit, full range
    for image in (grey, Image.fromarray(grey), torch.from_numpy(grey), wide):
        assert torch.equal(ainnoseg.segment_image(model, image, amp="off"), expected)


def test_probabilities_on_request_and_multi_scale_options_pass_through(model, photo):
    labels, probs = ainnoseg.segment_image(model, photo, scales=(0.75, 1.0), flip=True,
                                           amp="off", probabilities=True)
    assert probs.shape == (3, 48, 64)
    assert torch.allclose(probs.sum(0), torch.ones(48, 64), atol=1e-5)
    assert torch.equal(labels, probs.argmax(0))
    assert torch.equal(labels, _expected(model, read_image(photo), scales=(0.75, 1.0), flip=True))


def test_a_very_large_image_takes_the_sliding_window_of_the_training_crop(model, tmp_path):
    path = tmp_path / "large.png"
    write_image(path, height=80, width=120, seed=4)  # over 4 crops of 32x48
    batch = eval_transforms()(read_image(path)).unsqueeze(0)
    slide = predict(model, batch, mode="slide", crop_size=(32, 48), amp="off")[0].argmax(0)
    whole = predict(model, batch, amp="off")[0].argmax(0)
    assert not torch.equal(slide, whole)  # the two modes differ, so the check below can fail
    assert torch.equal(ainnoseg.segment_image(model, path, amp="off"), slide)
    assert torch.equal(ainnoseg.segment_image(model, path, amp="off", mode="whole"), whole)


def test_the_fast_copy_keeps_the_metadata_and_segments_alike(model, photo):
    fast = ainnoseg.optimize_for_inference(model, amp="off")
    assert fast.meta == model.meta and fast.meta.class_names == CLASSES
    # folded batch norms round differently, so compare most pixels, not all
    same = ainnoseg.segment_image(fast, photo, amp="off") == ainnoseg.segment_image(
        model, photo, amp="off")
    assert same.float().mean() > 0.99


@pytest.mark.parametrize("image, message", [
    (np.zeros((8, 8, 3), np.float32), "uint8"),
    (np.zeros((3, 8, 8, 1), np.uint8), "shaped"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "shaped"),
    (torch.zeros(3, 8, 8), "ainnoseg.predict"),
    ([1, 2, 3], "file path"),
])
def test_inputs_it_cannot_read_get_an_error_saying_what_it_takes(model, image, message):
    with pytest.raises(DataError, match=message):
        ainnoseg.segment_image(model, image)


def test_a_missing_or_corrupt_file_is_named(model, tmp_path):
    with pytest.raises(DataError, match="missing.png"):
        ainnoseg.segment_image(model, tmp_path / "missing.png")
    (tmp_path / "corrupt.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="corrupt.png"):
        ainnoseg.segment_image(model, tmp_path / "corrupt.png")


def test_an_image_smaller_than_the_stride_is_refused_with_the_minimum(model):
    with pytest.raises(ValueError, match="stride"):
        ainnoseg.segment_image(model, np.zeros((2, 2, 3), np.uint8))


@pytest.mark.parametrize("size", [(0, 0), (0, 40), (40, 0)])
def test_an_image_without_pixels_is_refused_with_a_data_error(model, size):
    with pytest.raises(DataError, match=rf"the image is {size[1]} x {size[0]} pixels: it has "
                                        "no pixels to segment"):
        ainnoseg.segment_image(model, np.zeros((*size, 3), np.uint8))


def test_a_file_smaller_than_the_stride_is_named_with_the_size_needed(model, tmp_path):
    Image.new("RGB", (3, 3)).save(tmp_path / "dot.png")
    with pytest.raises(DataError, match=r"dot.png is 3 x 3 pixels at scale 0.75, smaller than "
                                        r"the networks' stride of 32 pixels; use an image of "
                                        r"at least 43 x 43 pixels"):
        ainnoseg.segment_image(model, tmp_path / "dot.png", scales=(0.75, 1.0), mode="whole")
    labels = ainnoseg.segment_image(model, tmp_path / "dot.png", mode="slide", crop_size=64)
    assert labels.shape == (3, 3)  # windows are padded to the crop
