"""Object sizes: connected regions per class, counted and binned."""

import numpy as np
import torch

from ainnoseg.data import SyntheticScenes, mosaic_sample, train_transforms
from ainnoseg.data.object_sizes import object_sizes, size_histogram, small_share


def test_regions_are_counted_per_class_and_eight_connected():
    mask = np.zeros((8, 8), np.uint8)
    mask[0:2, 0:2] = 1        # one object of 4 px
    mask[2, 2] = 1            # touches it diagonally: the same object
    mask[5:8, 5:8] = 1        # another of 9 px
    mask[0, 7] = 2
    mask[7, 0] = 255          # ignored, never an object
    sizes = object_sizes([mask, torch.from_numpy(mask)], classes=[1, 2, 3])
    assert sorted(sizes[1].tolist()) == [5, 5, 9, 9]
    assert sizes[2].tolist() == [1, 1] and sizes[3].size == 0
    assert set(object_sizes([mask])) == {0, 1, 2}


def test_histogram_and_small_share():
    counts, edges = size_histogram({1: np.array([1, 3, 50]), 2: np.array([900])}, bins=3)
    assert counts.sum() == 4 and edges[0] == 1 and edges[-1] >= 900
    assert small_share({1: np.array([1, 3, 50, 900])}, 10) == 0.5
    assert small_share(np.zeros(0), 10) is None
    counts, _ = size_histogram(np.array([5]), bins=4, largest=1000)
    assert counts.sum() == 1


def test_mosaic_makes_the_objects_smaller():
    dataset = SyntheticScenes("train", size=(96, 128), length=8,
                              transforms=train_transforms((96, 128), (96, 128), (1.0, 1.0)))
    plain = [dataset[i][1] for i in range(4)]
    mosaics = [mosaic_sample(dataset, i)[1] for i in range(4)]
    median = {name: np.median(np.concatenate(list(object_sizes(masks).values())))
              for name, masks in (("plain", plain), ("mosaic", mosaics))}
    assert median["mosaic"] < median["plain"]
