"""`ainnoseg.data.examples`: the demo's bundled synthetic scenes and CamVid val frames."""

import os

import numpy as np
import pytest
from PIL import Image

from ainnoseg.data import SyntheticScenes, build_dataset
from ainnoseg.data.examples import (EXAMPLE_SIZE, EXAMPLES_DIR, bundled_examples, busiest_scenes,
                                    camvid_examples, find_camvid, list_examples, write_examples)


def test_written_examples_are_scenes_with_their_masks_in_the_own_data_layout(tmp_path):
    paths = write_examples(tmp_path, count=2, pool=4, size=(64, 80))
    indices = busiest_scenes(2, pool=4, size=(64, 80))
    assert [p.name for p in paths] == [f"synthetic_val_{i:05d}.png" for i in indices]
    scenes = SyntheticScenes("val", size=(64, 80), length=4)
    for path, index in zip(paths, indices):
        image, mask = scenes[index]
        assert np.array_equal(np.asarray(Image.open(path)), image.permute(1, 2, 0).numpy())
        assert np.array_equal(np.asarray(Image.open(tmp_path / "masks" / path.name)), mask.numpy())
    dataset = build_dataset(tmp_path, "val")
    assert len(dataset) == 2 and dataset.class_names == scenes.class_names
    listed = bundled_examples(tmp_path)
    assert [e["image"] for e in listed] == paths
    assert all(e["mask"].is_file() and e["source"] == "synthetic" for e in listed)


def test_the_busiest_scenes_show_the_most_classes():
    scenes = SyntheticScenes("val", size=(64, 80), length=6)
    classes = [len(set(np.unique(scenes[i][1].numpy())) - {255}) for i in range(6)]
    chosen = busiest_scenes(2, pool=6, size=(64, 80))
    assert chosen == sorted(chosen)
    assert min(classes[i] for i in chosen) >= max(c for i, c in enumerate(classes)
                                                  if i not in chosen)


def test_the_committed_examples_are_the_scenes_they_are_named_after():
    listed = bundled_examples()
    assert len(listed) >= 3
    for example in listed:
        index = int(example["name"].rsplit("_", 1)[1])
        image, mask = SyntheticScenes("val", size=EXAMPLE_SIZE, length=index + 1)[index]
        assert np.array_equal(np.asarray(Image.open(example["image"])),
                              image.permute(1, 2, 0).numpy())
        assert np.array_equal(np.asarray(Image.open(example["mask"])), mask.numpy())
    assert (EXAMPLES_DIR / "classes.txt").read_text().split() == SyntheticScenes.class_names


def _camvid(root, frames=4):
    for folder in ("val", "valannot"):
        (root / folder).mkdir(parents=True)
    for index in range(frames):
        Image.fromarray(np.full((24, 32, 3), index * 40, np.uint8)).save(
            root / "val" / f"f{index}.png")
        labels = np.full((24, 32), index, np.uint8)
        labels[:4] = 11  # CamVid's void
        Image.fromarray(labels).save(root / "valannot" / f"f{index}.png")
    return root


def test_camvid_examples_spread_over_val_with_void_marked_ignored(tmp_path):
    root = _camvid(tmp_path / "camvid")
    found = camvid_examples(root, count=2, cache=tmp_path / "cache")
    assert [e["name"] for e in found] == ["camvid f0", "camvid f2"]
    mask = np.asarray(Image.open(found[1]["mask"]))
    assert (mask[:4] == 255).all() and (mask[4:] == 2).all()
    assert found[1]["image"] == root / "val" / "f2.png" and found[1]["source"] == "camvid"
    assert camvid_examples(None) == []
    labels = np.full((24, 32), 5, np.uint8)
    Image.fromarray(labels).save(root / "valannot" / "f2.png")
    os.utime(root / "valannot" / "f2.png", (found[1]["mask"].stat().st_mtime + 10,) * 2)
    again = camvid_examples(root, count=2, cache=tmp_path / "cache")
    assert (np.asarray(Image.open(again[1]["mask"])) == 5).all()  # a newer label file: redone
    other = _camvid(tmp_path / "other")
    assert camvid_examples(other, 1)[0]["mask"].parent != camvid_examples(root, 1)[0]["mask"].parent
    assert list_examples(tmp_path / "none", camvid=root, camvid_count=1)[0]["name"] == "camvid f0"


def test_find_camvid_takes_a_given_folder_or_the_usual_place():
    assert find_camvid(EXAMPLES_DIR) == EXAMPLES_DIR
    with pytest.raises(FileNotFoundError, match="no CamVid folder at /no/such"):
        find_camvid("/no/such")
    found = find_camvid()
    assert found is None or (found / "val").is_dir()
