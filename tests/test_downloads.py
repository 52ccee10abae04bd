"""What a user downloads from a prediction: a label PNG that reads back as the
same class indices, an overlay PNG, and a scores CSV."""

import csv
import io

import numpy as np
import pytest
from PIL import Image

from ainnoseg.data import read_mask
from ainnoseg.inference import downloads


def test_a_label_png_reads_back_as_the_same_class_indices(tmp_path):
    labels = np.random.default_rng(0).integers(0, 11, size=(37, 53))
    labels[0, :5] = 255  # ignored
    path = tmp_path / "labels.png"
    path.write_bytes(downloads.label_png(labels, ("Software", "ainnoseg")))
    assert (read_mask(path).numpy() == labels).all()
    with Image.open(path) as image:
        assert image.mode == "L" and image.text == {"Software": "ainnoseg"}
        assert (np.asarray(image) == labels).all()
    with pytest.raises(ValueError, match="0-255"):
        downloads.label_png(np.full((2, 2), 300))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        downloads.label_png(np.zeros((2, 2, 3), np.uint8))


def test_a_picture_png_holds_the_picture():
    picture = np.random.default_rng(1).integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    with Image.open(io.BytesIO(downloads.picture_png(picture))) as image:
        assert image.mode == "RGB" and (np.asarray(image) == picture).all()
    with pytest.raises(ValueError, match="uint8"):
        downloads.picture_png(picture.astype(np.float32))


def test_the_scores_csv_keeps_columns_in_order_and_leaves_none_empty():
    rows = [{"model": "A", "mIoU": 0.5, "Boundary IoU": None},
            {"model": "B", "mIoU": 0.25, "pixel acc.": 0.9}]
    text = downloads.metrics_csv(rows)
    read = list(csv.DictReader(io.StringIO(text)))
    assert list(read[0]) == ["model", "mIoU", "Boundary IoU", "pixel acc."]
    assert read[0]["Boundary IoU"] == "" and read[1]["pixel acc."] == "0.9"
    assert read[1]["Boundary IoU"] == ""


def test_file_stems_and_written_files(tmp_path):
    assert downloads.file_stem("val 00017") == "val_00017"
    assert downloads.file_stem("../../etc/passwd.png") == "passwd"
    assert downloads.file_stem("ç;.png") == "image"
    paths = downloads.write_files(tmp_path / "out", {"a.csv": "x,y\n", "b.png": b"\x89PNG"})
    assert [p.name for p in paths] == ["a.csv", "b.png"]
    assert paths[0].read_text() == "x,y\n" and paths[1].read_bytes() == b"\x89PNG"
