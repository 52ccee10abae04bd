import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from ainnoseg.data import (
    ADE20K, CamVid, DataError, FolderDataset, ImageFolder, build_dataset, detect_layout,
    read_image)
from ainnoseg.data.ade20k_classes import ADE20K_CLASSES
from data_trees import ade20k_tree, camvid_tree, folder_tree, stripes, write_image, write_mask


def test_ade20k_shifts_labels_down_and_ignores_label_zero(tmp_path):
    root = ade20k_tree(tmp_path / "ADEChallengeData2016")
    dataset = build_dataset(root, split="val")
    assert isinstance(dataset, ADE20K) and len(dataset) == 2
    assert len(ADE20K_CLASSES) == len(set(ADE20K_CLASSES)) == dataset.num_classes == 150
    image, mask = dataset[0]
    assert isinstance(image, tv_tensors.Image) and isinstance(mask, tv_tensors.Mask)
    assert image.shape == (3, 24, 32) and image.dtype == torch.uint8
    expected = stripes(values=(255, 0, 149))
    np.testing.assert_array_equal(mask.numpy(), expected)


def test_camvid_ignores_void_and_any_path_works(tmp_path):
    root = camvid_tree(tmp_path / "my copy of camvid")
    assert detect_layout(root) == "camvid"
    dataset = build_dataset(root, split="train")
    assert isinstance(dataset, CamVid) and dataset.num_classes == 11
    assert dataset.class_names[2] == "Pole" and dataset.ignore_index == 255
    _, mask = dataset[1]
    np.testing.assert_array_equal(mask.numpy(), stripes(values=(0, 3, 255)))
    pool = build_dataset(root, split="test")  # labels withheld: an unlabeled pool
    assert isinstance(pool, ImageFolder) and len(pool) == 2
    assert isinstance(pool[0], tv_tensors.Image)


def test_folder_dataset_reads_class_names_and_ignore(tmp_path):
    root = folder_tree(tmp_path / "pets")
    dataset = build_dataset(root)
    assert isinstance(dataset, FolderDataset)
    assert dataset.class_names == ["background", "cat", "dog"] and len(dataset.palette) == 3
    _, mask = dataset[0]
    np.testing.assert_array_equal(mask.numpy(), stripes(values=(0, 1, 255)))


def test_folder_dataset_uses_split_folders_when_present(tmp_path):
    root = tmp_path / "data"
    (root).mkdir()
    (root / "classes.txt").write_text("a\nb\n")
    for split, count in (("train", 3), ("val", 1)):
        for i in range(count):
            write_image(root / "images" / split / f"{i}.png")
            write_mask(root / "masks" / split / f"{i}.png", stripes(values=(0, 1)))
    assert len(build_dataset(root, "train")) == 3 and len(build_dataset(root, "val")) == 1


def test_image_folder_of_unlabeled_images(tmp_path):
    for i in range(3):
        write_image(tmp_path / "pool" / f"{i}.jpg", seed=i)
    pool = build_dataset(tmp_path / "pool")
    assert isinstance(pool, ImageFolder) and len(pool) == 3
    assert [p.name for p in pool.paths] == ["0.jpg", "1.jpg", "2.jpg"]


def test_synthetic_by_name():
    dataset = build_dataset("synthetic", split="val", length=3)
    image, mask = dataset[0]
    assert image.shape[0] == 3 and mask.shape == image.shape[-2:]


def test_missing_and_empty_folders_say_so(tmp_path):
    with pytest.raises(DataError, match="no dataset folder"):
        build_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images .* layouts"):
        build_dataset(tmp_path / "empty")


def test_mask_of_another_size_names_both_files(tmp_path):
    root = folder_tree(tmp_path / "data", count=1)
    write_mask(root / "masks" / "img0.png", np.zeros((20, 32)))
    with pytest.raises(DataError, match=r"img0.png is 32x20 but its image .*img0.jpg is 32x24"):
        build_dataset(root)[0]


def test_labels_outside_the_classes_name_the_file_and_values(tmp_path):
    root = folder_tree(tmp_path / "data", count=1)
    write_mask(root / "masks" / "img0.png", stripes(values=(0, 7, 9)))
    with pytest.raises(DataError, match=r"img0.png holds labels \[7, 9\]"):
        build_dataset(root)[0]


def test_corrupt_image_names_the_file(tmp_path):
    root = folder_tree(tmp_path / "data", count=1)
    (root / "images" / "img0.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match="cannot read .*img0.jpg"):
        build_dataset(root)[0]


def test_colour_masks_are_refused_with_a_reason(tmp_path):
    root = folder_tree(tmp_path / "data", count=1)
    Image.new("RGB", (32, 24)).save(root / "masks" / "img0.png")
    with pytest.raises(DataError, match="not colours"):
        build_dataset(root)[0]


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK"])
def test_any_image_mode_reads_as_rgb(tmp_path, mode):
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    array = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    image = Image.fromarray(array)
    if mode == "I;16":
        image = Image.fromarray(array[..., 0].astype(np.uint16) * 257)
    else:
        image = image.convert(mode)
    image.save(path)
    loaded = read_image(path)
    assert loaded.shape == (3, 10, 12) and loaded.dtype == torch.uint8
    if mode == "I;16":
        np.testing.assert_array_equal(loaded[0].numpy(), array[..., 0])


def test_exif_rotation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "photo.jpg", exif=exif)
    assert read_image(tmp_path / "photo.jpg").shape == (3, 40, 20)


def test_a_camvid_copy_without_its_train_split_says_which_splits_it_has(tmp_path):
    root = camvid_tree(tmp_path / "camvid")
    for split in ("train", "trainannot"):
        for path in (root / split).iterdir():
            path.unlink()
        (root / split).rmdir()
    assert detect_layout(root) == "camvid"
    assert isinstance(build_dataset(root, "val"), CamVid)
    with pytest.raises(DataError,
                       match=r"CamVid folder .* has no train/ split \(it has val, test\)"):
        build_dataset(root, "train")


def test_a_label_outside_the_classes_suggests_mapping_void_to_ignore(tmp_path):
    root = folder_tree(tmp_path / "data", count=1)
    write_mask(root / "masks" / "img0.png", stripes(values=(0, 1, 11)))
    with pytest.raises(DataError) as error:
        build_dataset(root)[0]
    message = str(error.value)
    assert "holds labels [11]" in message and "valid file labels are 0-2 and 255" in message
    assert "set those pixels to 255" in message and "classes.txt" in message


def test_a_split_folder_layout_without_the_asked_split_names_those_it_has(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.txt").write_text("a\nb\n")
    write_image(root / "images" / "train" / "0.png")
    write_mask(root / "masks" / "train" / "0.png", stripes(values=(0, 1)))
    assert build_dataset(root, "train").split_folders
    with pytest.raises(DataError, match="no val split: images/ holds the split folders train"):
        build_dataset(root, "val")
