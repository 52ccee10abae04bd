"""`ainnoseg predict` writes over no file it did not write: not an input, and
not another image that happens to sit where an output goes; it refuses before
writing anything, and a later run replaces its own earlier outputs."""

import pytest
from PIL import Image

from ainnoseg.cli import main
from data_trees import write_image
from huge_images import write_huge_png
from test_cli import checkpoint  # noqa: F401 (the three-class checkpoint fixture)


def _run(argv):
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code


def _error_line(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_an_image_where_an_output_goes_is_not_replaced_and_nothing_is_written(
        tmp_path, checkpoint, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "in" / "c.jpg", 64, 96, seed=1)
    write_image(tmp_path / "in" / "c.png", 64, 96, seed=2)  # another picture, not an input
    before = (tmp_path / "in" / "c.png").read_bytes()
    assert _run(["predict", str(checkpoint), "in/c.jpg", "--out", "in"]) == 2
    line = _error_line(capsys)
    assert "--out in would replace in/c.png, which ainnoseg predict did not write" in line
    assert (tmp_path / "in" / "c.png").read_bytes() == before
    assert sorted(path.name for path in (tmp_path / "in").iterdir()) == ["c.jpg", "c.png"]


@pytest.mark.parametrize("make", [
    lambda path: path.mkdir(),  # a folder where the overlay goes
    lambda path: write_huge_png(path, 30000, 30000),  # a bomb: refused unread
    lambda path: path.write_text("notes"),
])
def test_anything_else_where_an_output_goes_is_refused(tmp_path, checkpoint, capsys, make):
    write_image(tmp_path / "frames" / "f1.png", 64, 96)
    (tmp_path / "out").mkdir()
    make(tmp_path / "out" / "f1_overlay.png")
    assert _run(["predict", str(checkpoint), str(tmp_path / "frames"),
                 "--out", str(tmp_path / "out")]) == 2
    assert "f1_overlay.png, which ainnoseg predict did not write" in _error_line(capsys)
    assert not (tmp_path / "out" / "f1.png").exists()


def test_a_later_run_replaces_its_own_outputs(tmp_path, checkpoint, capsys):
    write_image(tmp_path / "frames" / "f1.png", 64, 96)
    argv = ["predict", str(checkpoint), str(tmp_path / "frames"), "--out", str(tmp_path / "out")]
    assert _run(argv) == 0
    with Image.open(tmp_path / "out" / "f1.png") as labels:
        assert labels.info["Software"] == "ainnoseg predict" and labels.size == (96, 64)
    assert _run(argv) == 0
    assert "segmented 1 image(s)" in capsys.readouterr().out
