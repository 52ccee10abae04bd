import numpy as np
import pytest
import torch
from scipy import ndimage
from torchvision import tv_tensors

from ainnoseg.data.synthetic import SyntheticScenes

SIZE = (256, 320)


@pytest.fixture(scope="module")
def samples():
    """20 training scenes as numpy (image (3, H, W), mask (H, W)) pairs."""
    dataset = SyntheticScenes("train", size=SIZE)
    return [(image.numpy(), mask.numpy()) for image, mask in (dataset[i] for i in range(20))]


def _components(mask, class_id):
    """Connected regions of one class: (bounding slices, boolean region) pairs."""
    regions, _ = ndimage.label(mask == class_id)
    for index, box in enumerate(ndimage.find_objects(regions), start=1):
        yield box, regions[box] == index


def test_sample_types_shapes_and_dtypes():
    dataset = SyntheticScenes("val", size=(96, 128), length=3)
    image, mask = dataset[0]
    assert isinstance(image, tv_tensors.Image) and isinstance(mask, tv_tensors.Mask)
    assert image.dtype == torch.uint8 and image.shape == (3, 96, 128)
    assert mask.dtype == torch.uint8 and mask.shape == (96, 128)


def test_lengths():
    assert [len(SyntheticScenes(split)) for split in ("train", "val", "test")] == [400, 100, 100]
    assert len(SyntheticScenes("val", length=7)) == 7


def test_metadata():
    dataset = SyntheticScenes()
    assert 8 <= dataset.num_classes <= 12
    assert len(dataset.class_names) == len(dataset.palette) == dataset.num_classes
    assert len(set(dataset.palette)) == dataset.num_classes
    assert all(len(color) == 3 and all(0 <= c <= 255 for c in color) for color in dataset.palette)
    assert dataset.ignore_index == 255


def test_same_seed_and_index_give_the_same_scene():
    first, second = SyntheticScenes(seed=3)[5], SyntheticScenes(seed=3)[5]
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert torch.equal(SyntheticScenes(length=4)[-1][0], SyntheticScenes()[3][0])


@pytest.mark.parametrize("split, seed, index", [
    ("train", 0, 1), ("train", 1, 0), ("val", 0, 0), ("test", 0, 0)])
def test_other_index_seed_or_split_gives_another_scene(split, seed, index):
    image, mask = SyntheticScenes("train", seed=0)[0]
    other_image, other_mask = SyntheticScenes(split, seed=seed)[index]
    assert not torch.equal(image, other_image) and not torch.equal(mask, other_mask)


def test_labels_are_classes_or_ignore_and_mostly_labelled(samples):
    masks = np.stack([mask for _, mask in samples])
    allowed = set(range(SyntheticScenes.num_classes)) | {255}
    assert set(np.unique(masks).tolist()) <= allowed
    assert 0 < (masks == 255).mean() < 0.02  # ignore is exercised, sparingly


def test_every_class_appears(samples):
    seen = set()
    for _, mask in samples:
        seen |= set(np.unique(mask).tolist())
    assert set(range(SyntheticScenes.num_classes)) <= seen


def test_small_objects_and_many_scales(samples):
    names = SyntheticScenes.class_names
    small_classes = [names.index(name) for name in ("sign", "car", "person", "bicyclist")]
    pixels = SIZE[0] * SIZE[1]
    areas = {c: [] for c in small_classes}
    for _, mask in samples:
        for c in small_classes:
            areas[c] += [region.sum() for _, region in _components(mask, c)]
    assert any(area < 0.002 * pixels for c in small_classes for area in areas[c])
    cars = areas[names.index("car")]
    assert max(cars) > 100 * min(cars)  # perspective: near cars dwarf far ones


def test_thin_poles_exist(samples):
    pole = SyntheticScenes.class_names.index("pole")
    thin = [region for _, mask in samples for _, region in _components(mask, pole)
            if region.shape[0] >= 10 and region.sum(axis=1).max() <= 4]
    assert thin, "no pole at most 4 px wide and 10 px tall in 20 scenes"


def _edge_contrast(image, mask):
    """Mean colour step across label boundaries over the mean step inside regions."""
    image = image.astype(np.float32).sum(axis=0)
    pairs = [(np.abs(np.diff(image, axis=0)), mask[1:], mask[:-1]),
             (np.abs(np.diff(image, axis=1)), mask[:, 1:], mask[:, :-1])]
    across, inside = [], []
    for step, a, b in pairs:
        valid = (a != 255) & (b != 255)
        across.append(step[valid & (a != b)].mean())
        inside.append(step[valid & (a == b)].mean())
    return np.mean(across) / np.mean(inside)


def test_mask_matches_what_the_image_shows(samples):
    # If the mask were drawn in another painter's order than the image (wrong
    # occlusion) or offset from it, its boundaries would not sit on image edges.
    for image, mask in samples[:5]:
        contrast = _edge_contrast(image, mask)
        assert contrast > 3
        for shift, axis in [(1, 0), (1, 1), (-1, 0), (-1, 1)]:
            assert contrast > 1.3 * _edge_contrast(image, np.roll(mask, shift, axis=axis))


def test_colour_alone_does_not_give_the_class(samples):
    # Class colour distributions overlap, so texture and context must matter:
    # a nearest-class-mean colour classifier stays poor.
    colors = np.concatenate([image.reshape(3, -1).T[::7] for image, _ in samples]).astype(float)
    labels = np.concatenate([mask.ravel()[::7] for _, mask in samples])
    colors, labels = colors[labels != 255], labels[labels != 255]
    means = np.stack([colors[labels == c].mean(axis=0) for c in range(SyntheticScenes.num_classes)])
    nearest = ((colors[:, None, :] - means[None]) ** 2).sum(axis=-1).argmin(axis=1)
    assert (nearest == labels).mean() < 0.6


def test_transforms_are_applied_last():
    def flip(image, mask):
        return image.flip(-1), mask.flip(-1)

    image, mask = SyntheticScenes(length=1)[0]
    flipped_image, flipped_mask = SyntheticScenes(length=1, transforms=flip)[0]
    assert torch.equal(flipped_image, image.flip(-1)) and torch.equal(flipped_mask, mask.flip(-1))


@pytest.mark.parametrize("kwargs", [
    {"split": "training"},
    {"size": (32, 320)},
    {"size": (256,)},
    {"size": 256},
    {"seed": -1},
    {"length": -5},
])
def test_bad_arguments_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        SyntheticScenes(**kwargs)


@pytest.mark.parametrize("index", [3, -4, 100])
def test_out_of_range_index_raises_index_error(index):
    with pytest.raises(IndexError):
        SyntheticScenes(length=3)[index]
