"""On the real CamVid copy beside the project, where there is one."""

from pathlib import Path

import pytest
import torch

from ainnoseg.data import CamVid, ImageFolder, build_dataset, train_transforms

CAMVID = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "camvid"
pytestmark = pytest.mark.skipif(
    not CAMVID.is_dir(), reason=f"CamVid not found at {CAMVID} (a fresh clone has no ../shared)")


def test_splits_and_labels():
    train, val = build_dataset(CAMVID, "train"), build_dataset(CAMVID, "val")
    assert isinstance(train, CamVid) and (len(train), len(val)) == (367, 101)
    test = build_dataset(CAMVID, "test")
    assert isinstance(test, ImageFolder) and len(test) == 233
    image, mask = val[0]
    assert image.shape == (3, 360, 480) and mask.shape == (360, 480)
    labels = set(mask.unique().tolist())
    assert labels <= set(range(11)) | {255} and len(labels) > 5


def test_training_pipeline_gives_crops():
    dataset = build_dataset(CAMVID, "train", transforms=train_transforms((256, 320), (360, 480)))
    image, mask = dataset[5]
    assert image.shape == (3, 256, 320) and mask.dtype == torch.int64
