import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ainnoseg.cli import main
from ainnoseg.data.check import check_dataset
from data_trees import camvid_tree, folder_tree, stripes, write_image, write_mask

SIDE = 32  # the smallest image the networks evaluate (MIN_SIDE): the trees' height


def camvid(root):
    return camvid_tree(root, height=SIDE)


def folder(root, count):
    return folder_tree(root, count, height=SIDE)


def test_report_counts_sizes_and_class_histogram(tmp_path):
    report = check_dataset(camvid(tmp_path / "camvid"))
    assert report["layout"] == "camvid"
    assert set(report["splits"]) == {"train", "val", "test"}
    train = report["splits"]["train"]
    assert train["samples"] == 2 and train["sizes"] == {"32x32": 2}
    # stripes(0, 3, 11) on 32 columns: 11, 11 and 10 columns of 32 rows
    assert train["histogram"]["Sky"] == 2 * 11 * 32
    assert train["histogram"]["Road"] == 2 * 11 * 32
    assert train["ignored_pixels"] == 2 * 10 * 32
    assert train["problems"] == []


def test_every_problem_is_found_and_names_its_file(tmp_path):
    root = folder(tmp_path / "data", count=5)
    (root / "images" / "img0.jpg").write_bytes(b"garbage")
    write_mask(root / "masks" / "img1.png", np.zeros((10, 10)))
    write_mask(root / "masks" / "img2.png", stripes(SIDE, values=(0, 42)))
    write_image(root / "images" / "lonely.jpg", SIDE, SIDE)
    report = check_dataset(root)
    assert list(report["splits"]) == ["all"]  # no split folders: checked once, not per split
    problems = report["splits"]["all"]["problems"]
    text = "\n".join(f"{path}: {message}" for path, message in problems)
    assert len(problems) == 4, text
    assert "lonely.jpg: image without a mask" in text
    assert "cannot read" in text and "img0.jpg" in text
    assert "img1.png is 10x10 but its image" in text
    assert "img2.png holds labels [42]" in text


def test_cli_exit_status_and_json(tmp_path, capsys):
    root = folder(tmp_path / "data", count=2)
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "check", str(root), "--json"])
    assert exit_info.value.code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["all"]["samples"] == 2
    Image.new("RGB", (5, 5)).save(root / "masks" / "img0.png")
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "check", str(root)])
    assert exit_info.value.code == 1
    assert "PROBLEM" in capsys.readouterr().out


def test_cli_on_an_empty_folder_explains_the_layouts(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "check", str(tmp_path / "empty")])
    assert exit_info.value.code == 2
    assert "layouts" in capsys.readouterr().err


def test_masks_with_camvids_void_are_explained_and_their_images_still_counted(tmp_path, capsys):
    root = folder(tmp_path / "data", count=2)
    for index in range(2):
        write_mask(root / "masks" / f"img{index}.png", stripes(SIDE, values=(0, 1, 11)))
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "check", str(root)])
    out = capsys.readouterr().out
    assert exit_info.value.code == 1
    assert "image sizes: 32x32 (2)" in out  # the images are fine
    assert out.count("PROBLEM") == 2  # once per file
    assert "holds labels [11]" in out and "CamVid's void is 11" in out and "to 255" in out
    assert "no split folders" in out


def test_a_camvid_copy_with_only_its_val_split_is_recognised(tmp_path):
    root = camvid(tmp_path / "camvid")
    for split in ("train", "trainannot", "test"):
        for path in (root / split).iterdir():
            path.unlink()
        (root / split).rmdir()
    report = check_dataset(root)
    assert report["layout"] == "camvid" and list(report["splits"]) == ["val"]
    assert report["splits"]["val"]["samples"] == 2 and not report["splits"]["val"]["problems"]


def test_the_fast_path_finds_what_training_would_trip_on(tmp_path):
    from ainnoseg.data import build_dataset
    from ainnoseg.data.check import quick_check

    root = folder(tmp_path / "data", count=4)
    png = root / "images" / "img1.png"
    write_image(png, SIDE, SIDE)
    (root / "images" / "img1.jpg").unlink()
    png.write_bytes(png.read_bytes()[:-30])  # cut short
    (root / "images" / "img0.jpg").write_bytes(b"garbage")
    write_mask(root / "masks" / "img2.png", np.zeros((10, 10)))
    write_mask(root / "masks" / "img3.png", stripes(SIDE, values=(0, 42)))
    problems = dict(quick_check(build_dataset(root)))
    assert sorted(Path(path).name for path in problems) == [
        "img0.jpg", "img1.png", "img2.jpg", "img3.jpg"]
    assert "img2.png is 10x10 but its image" in problems[str(root / "images" / "img2.jpg")]


def test_training_is_told_every_problem_once_even_where_two_splits_are_one_folder(tmp_path):
    from ainnoseg.data import DataError, build_dataset
    from ainnoseg.data.check import require_readable

    root = folder(tmp_path / "data", count=2)
    write_mask(root / "masks" / "img1.png", np.zeros((10, 10)))
    with pytest.raises(DataError) as error:
        require_readable({"the train split": build_dataset(root, "train"),
                          "the val split": build_dataset(root, "val")})
    message = str(error.value)
    assert message.startswith("1 problem(s) in the train split and the val split")
    assert message.count("img1.png is 10x10") == 1 and "ainnoseg data check" in message


def test_images_smaller_than_the_networks_stride_are_a_problem(tmp_path):
    from ainnoseg.data import build_dataset
    from ainnoseg.data.check import require_readable

    root = folder_tree(tmp_path / "tiny_images", count=2)
    for path in sorted((root / "images").iterdir()):
        write_image(path, 3, 3)
    for path in sorted((root / "masks").iterdir()):
        write_mask(path, [[0, 1, 0]] * 3)
    problems = check_dataset(root)["splits"]["all"]["problems"]
    assert problems and all("3x3" in message and "32" in message for _, message in problems)
    with pytest.raises(ValueError, match="smaller than"):
        require_readable({"data": build_dataset(root)})
