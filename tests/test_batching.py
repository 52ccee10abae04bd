"""`ainnoseg.data.batching`: samples of different sizes stacked run by run."""

import torch
from torchvision import tv_tensors

from ainnoseg.data.batching import equal_size_batches


def test_consecutive_samples_of_one_size_are_stacked_field_by_field():
    def sample(height, value):
        return (tv_tensors.Image(torch.full((3, height, 4), value)),
                tv_tensors.Mask(torch.full((height, 4), value)))

    samples = [sample(2, 0), sample(2, 1), sample(3, 2), sample(2, 3)]
    batches = list(equal_size_batches(samples))
    assert [images.shape for images, _ in batches] == [(2, 3, 2, 4), (1, 3, 3, 4), (1, 3, 2, 4)]
    assert [masks[:, 0, 0].tolist() for _, masks in batches] == [[0, 1], [2], [3]]
    assert all(type(images) is torch.Tensor for images, _ in batches)


def test_values_that_are_not_tensors_come_back_as_lists():
    samples = [(7, torch.zeros(3, 2, 2)), (9, torch.zeros(3, 2, 2)), (4, torch.zeros(3, 5, 2))]
    assert [(indices, images.shape) for indices, images in equal_size_batches(samples)] == [
        ([7, 9], (2, 3, 2, 2)), ([4], (1, 3, 5, 2))]
