import torch
from torchvision import tv_tensors

from ainnoseg.data.transforms import (
    IMAGENET_MEAN, IMAGENET_STD, RandomCropAvoidingOneClass, RandomRescale, eval_transforms,
    train_transforms)


def _coded_pair(height=60, width=80):
    """An image whose pixels encode their own position, and a mask that is a
    function of the same position, so any misalignment shows."""
    rows = torch.arange(height).view(-1, 1).expand(height, width)
    cols = torch.arange(width).view(1, -1).expand(height, width)
    label = ((rows // 10) * 8 + cols // 10).to(torch.uint8)  # blocks of 10x10
    image = torch.stack([label * 4, label * 4, label * 4]).to(torch.uint8)
    return tv_tensors.Image(image), tv_tensors.Mask(label)


def test_training_transforms_keep_image_and_mask_aligned():
    torch.manual_seed(0)
    transforms = train_transforms(crop_size=(32, 48), scale=(60, 80), ratio_range=(0.5, 2.0),
                                  cat_max_ratio=1.0)
    transforms.transforms = [t for t in transforms.transforms
                             if type(t).__name__ != "ColorJitter"]  # colour must stay a code
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1) * 255
    for _ in range(20):
        image, mask = transforms(*_coded_pair())
        assert image.shape == (3, 32, 48) and mask.shape == (32, 48)
        assert image.dtype == torch.float32 and mask.dtype == torch.int64
        pixel = (image * std + mean)[0].round()
        labelled = mask != 255
        # Bilinear resizing blends neighbours at block edges: check block interiors.
        interior = labelled & (pixel == (mask * 4).float())
        assert interior.float().mean() > 0.6
        assert ((pixel[labelled] - mask[labelled] * 4).abs() > 40).float().mean() < 0.02


def test_masks_are_resized_with_nearest_and_never_get_new_values():
    image, mask = _coded_pair()
    rescale = RandomRescale((60, 80), (1.37, 1.37))
    _, resized = rescale(image, mask)
    assert resized.shape == (82, 110)
    assert set(resized.unique().tolist()) <= set(mask.unique().tolist())


def test_crop_pads_masks_with_ignore_and_images_with_zero():
    image, mask = _coded_pair(20, 30)
    crop = RandomCropAvoidingOneClass((40, 50), cat_max_ratio=1.0)
    image, mask = crop(image, mask)
    assert image.shape == (3, 40, 50)
    assert (mask[20:] == 255).all() and (mask[:, 30:] == 255).all()
    assert (image[:, 20:] == 0).all()


def test_crop_avoids_crops_dominated_by_one_class():
    mask = torch.zeros(100, 100, dtype=torch.uint8)
    mask[:, 80:] = 1  # class 0 fills 80%; only crops reaching the right side are varied
    image = tv_tensors.Image(torch.zeros(3, 100, 100, dtype=torch.uint8))
    crop = RandomCropAvoidingOneClass((40, 40), cat_max_ratio=0.75, tries=10)
    torch.manual_seed(0)
    varied = 0
    for _ in range(50):
        _, cropped = crop(image, tv_tensors.Mask(mask))
        varied += (cropped == 0).float().mean() <= 0.75
    assert varied >= 40  # a single random crop would be varied about 1 time in 3


def test_eval_transforms_normalise_without_changing_size():
    image, mask = _coded_pair()
    image, mask = eval_transforms()(image, mask)
    assert image.shape == (3, 60, 80) and mask.dtype == torch.int64
    image, mask = eval_transforms(scale=(30, 40))(*_coded_pair())
    assert image.shape == (3, 30, 40) and mask.shape == (30, 40)
