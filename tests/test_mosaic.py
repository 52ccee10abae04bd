import pytest
import torch

from ainnoseg.data import MosaicCollate, build_dataset, mosaic_sample, train_transforms
from ainnoseg.data.mosaic import halve_rarest, stitch


def _batch(count, height=8, width=10):
    images = torch.stack([torch.full((3, height, width), float(i)) for i in range(count)])
    masks = torch.stack([torch.full((height, width), i, dtype=torch.int64) for i in range(count)])
    return images, masks


def test_stitch_places_each_image_in_its_quadrant_and_pads_with_ignore():
    images, masks = _batch(4, 8, 8)
    # Centre (y=12, x=4) on the 16x16 canvas: the top images cover rows 4..11,
    # the bottom ones rows 12..15, the left ones columns 0..3, the right ones
    # columns 4..11; rows 0..3 and columns 12..15 stay uncovered.
    image, mask = stitch(images, masks, centre=(12, 4))
    assert image.shape == (3, 8, 8) and mask.shape == (8, 8)  # canvas halved
    assert (mask[:2] == 255).all() and (mask[:, 6:] == 255).all()
    assert mask[3, 0] == 0 and mask[3, 3] == 1  # top-left, top-right
    assert mask[7, 0] == 2 and mask[7, 3] == 3  # bottom-left, bottom-right
    assert image[0, 7, 3] == 3.0


def test_collate_adds_point_three_mosaics_per_original():
    torch.manual_seed(0)
    collate = MosaicCollate(ratio=0.3)
    samples = list(zip(*_batch(8)))
    originals = mosaics = 0
    for _ in range(400):
        images, masks = collate(samples)
        assert images.shape[0] == masks.shape[0]
        originals += 8
        mosaics += images.shape[0] - 8
    assert abs(mosaics / originals - 0.3) < 0.02


def test_collate_keeps_originals_first_and_mosaics_from_the_batch():
    torch.manual_seed(1)
    images, masks = MosaicCollate(ratio=1.0)(list(zip(*_batch(4))))
    assert images.shape[0] == 8
    torch.testing.assert_close(masks[:4], _batch(4)[1])
    assert set(masks[4:].unique().tolist()) <= {0, 1, 2, 3, 255}


def test_mosaic_sample_is_reproducible_from_its_seed():
    dataset = build_dataset("synthetic", split="train", length=12, size=(64, 80),
                            transforms=train_transforms((48, 64), scale=(64, 80)))
    first = mosaic_sample(dataset, 17, seed=3)
    again = mosaic_sample(dataset, 17, seed=3)
    other = mosaic_sample(dataset, 18, seed=3)
    torch.testing.assert_close(first[0], again[0])
    torch.testing.assert_close(first[1], again[1])
    assert first[0].shape == (3, 48, 64)
    assert not torch.equal(first[0], other[0])


def _poles(height=8, width=10):
    """Four road images (class 0), each with a pole (class 2) one pixel wide
    in column 3. Stitched at the canvas's middle, the poles stand in canvas
    columns 3 and 13: odd columns, which a nearest 2x reduction skips."""
    images, masks = torch.zeros(4, 3, height, width), torch.zeros(4, height, width, dtype=torch.int64)
    masks[:, :, 3] = 2
    return images, masks


def test_nearest_mask_halving_can_erase_a_one_pixel_pole():
    images, masks = _poles()
    _, nearest = stitch(images, masks, centre=(8, 10))
    _, rarest = stitch(images, masks, centre=(8, 10), mask_resize="rarest")
    assert (nearest == 2).sum() == 0
    assert (rarest == 2).nonzero()[:, 1].unique().tolist() == [1, 6]  # canvas columns 3, 13
    assert (rarest == 2).sum() == 2 * 8


def test_rarest_halving_keeps_ignore_only_where_a_block_holds_nothing_else():
    labels = torch.tensor([[255, 255, 255, 1],
                           [255, 255, 255, 255],
                           [0, 0, 1, 0],
                           [0, 0, 0, 0]])
    halved = halve_rarest(labels, ignore_index=255)
    assert halved.tolist() == [[255, 1], [0, 1]]


def test_collate_passes_the_mask_resize_on():
    torch.manual_seed(0)
    images, masks = _poles()
    collate = MosaicCollate(ratio=4.0, mask_resize="rarest")
    _, out_masks = collate(list(zip(images, masks)))
    assert (out_masks[4:] == 2).any()
    with pytest.raises(ValueError, match="mask_resize 'bilinear'"):
        MosaicCollate(mask_resize="bilinear")
