"""Huge images are refused from their header, before a pixel is decoded, and
importing ainnoseg leaves PIL's own decompression-bomb limit as it is."""

import subprocess
import sys

import pytest

from ainnoseg.data import DataError, build_dataset, read_image, read_mask
from data_trees import folder_tree
from huge_images import write_huge_png


def test_importing_ainnoseg_leaves_pils_bomb_limit_alone():
    script = ("from PIL import Image; default = Image.MAX_IMAGE_PIXELS; "
              "import ainnoseg, ainnoseg.data, ainnoseg.inference.inputs, ainnoseg.inference.uploads, "
              "ainnoseg.analysis, ainnoseg.analysis.previews; "
              "print(default, Image.MAX_IMAGE_PIXELS)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    default, after = done.stdout.split()
    assert after == default == "89478485"  # Pillow's own default


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_an_image_over_the_limit_is_refused_by_name_and_size_before_decoding(tmp_path):
    path = write_huge_png(tmp_path / "wide.png", 12000, 10000)  # 120 megapixels
    with pytest.raises(DataError, match=r"wide.png: it is 12000 x 10000 pixels, more than the "
                                        r"100 megapixels ainnoseg reads; resize it"):
        read_image(path)
    with pytest.raises(DataError, match="12000 x 10000 pixels"):
        read_mask(path)


def test_a_decompression_bomb_is_refused_by_name_and_size(tmp_path):
    path = write_huge_png(tmp_path / "bomb.png", 24000, 24000)  # 560 MB of pixels in 90 bytes
    with pytest.raises(DataError, match=r"cannot read .*bomb.png: it is too large "
                                        r"\(Image size \(576000000 pixels\)"):
        read_image(path)


def test_a_dataset_sample_with_a_huge_image_is_a_data_error(tmp_path):
    root = folder_tree(tmp_path / "pets")
    write_huge_png(root / "images" / "img1.jpg", 30000, 30000)  # a PNG named .jpg: PIL reads it
    dataset = build_dataset(root)
    dataset[0]
    with pytest.raises(DataError, match="img1.jpg: it is too large"):
        dataset[1]
