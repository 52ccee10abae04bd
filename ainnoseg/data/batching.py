"""Batches of samples whose sizes may differ: a DataLoader's collate keeps
them as a list (`collate_fn=list`), and `equal_size_batches` stacks each run
of consecutive samples of one size, so no image is resized or padded.

    for images, masks in equal_size_batches([(image, mask), ...]):
        ...                                     # (N, 3, H, W), (N, H, W)
"""

import itertools

import torch


def _tensor_shapes(sample):
    return tuple(value.shape for value in sample if isinstance(value, torch.Tensor))


def _stack(values):
    if isinstance(values[0], torch.Tensor):
        return torch.stack([value.as_subclass(torch.Tensor) for value in values])
    return list(values)


def equal_size_batches(samples):
    """Stack consecutive samples whose tensors have the same shapes.

    Args:
        samples: a list of tuples, e.g. (image, mask) or (index, image).
    Yields one tuple per run of samples of one size, field by field: tensors
    stacked into a batch (plain tensors, not tv_tensors), other values
    (indices) as a list.
    """
    for _, run in itertools.groupby(samples, key=_tensor_shapes):
        yield tuple(_stack(values) for values in zip(*run))
