"""Class colours stay apart over an image (`ainnoseg.data.palettes`), and a
loaded model draws with its dataset's current colours, not the ones its
checkpoint stored."""

import numpy as np
import pytest

import ainnoseg
from ainnoseg import viz
from ainnoseg.checkpoints.files import save_checkpoint
from ainnoseg.data import SyntheticScenes, palette_of
from ainnoseg.data.datasets import CAMVID_CLASSES, CAMVID_PALETTE
from ainnoseg.data.palettes import (DISTINCT_COLORS, MIN_SEPARATION, blended_distances,
                                    default_palette, separation)
from ainnoseg.registry import build_model

SEGNET = [(128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
          (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0),
          (0, 128, 192)]  # SegNet's CamVid colours, which the checkpoints stored
BUILT_IN = {"camvid": CAMVID_PALETTE,
            "synthetic": SyntheticScenes.palette,
            **{f"default for {n} classes": default_palette(n) for n in range(2, 19)}}


def _names(palette, pair):
    return [palette[index] for index in pair]


@pytest.mark.parametrize("name", list(BUILT_IN))
def test_every_built_in_palette_stays_apart_blended_at_half_over_grey(name):
    distance, i, j = separation(BUILT_IN[name])
    assert distance >= MIN_SEPARATION, (
        f"{name}: colours {i} and {j} {_names(BUILT_IN[name], (i, j))} are {distance:.1f} apart")


def test_segnets_two_olives_fail_the_check_that_the_new_palette_passes():
    distance, i, j = separation(SEGNET)
    assert distance < MIN_SEPARATION
    tree, pedestrian = CAMVID_CLASSES.index("Tree"), CAMVID_CLASSES.index("Pedestrian")
    assert blended_distances(SEGNET)[tree, pedestrian] < MIN_SEPARATION
    assert blended_distances(palette_of(CAMVID_CLASSES))[tree, pedestrian] >= MIN_SEPARATION


def test_the_distance_is_of_the_colours_as_the_overlay_blends_them():
    # Two colours the overlay paints alike over grey are at distance 0.
    image = np.full((1, 2, 3), 128, np.uint8)
    palette = [(200, 10, 10), (201, 10, 10)]
    drawn = viz.overlay(image, np.array([[0, 1]]), palette, alpha=0.5)
    assert np.array_equal(drawn[0, 0], drawn[0, 1])
    assert blended_distances(palette)[0, 1] == 0
    # Lightness counts half: a darker olive is nearer than another hue as bright.
    olive, darker, blue = (128, 128, 0), (64, 64, 0), (0, 128, 255)
    distances = blended_distances([olive, darker, blue])
    assert distances[0, 1] < distances[0, 2]
    assert separation([(1, 2, 3)]) == (float("inf"), None, None)
    with pytest.raises(ValueError, match="list of \\(r, g, b\\) colours"):
        blended_distances([1, 2, 3])


def test_the_default_palette_keeps_black_for_ignored_pixels_and_covers_ade20k():
    assert (0, 0, 0) not in DISTINCT_COLORS and len(set(DISTINCT_COLORS)) == len(DISTINCT_COLORS)
    assert default_palette(3) == DISTINCT_COLORS[:3]
    big = default_palette(150)
    assert len(set(big)) == 150


def test_a_built_in_datasets_classes_get_its_palette_and_other_classes_none():
    assert palette_of(SyntheticScenes.class_names) == SyntheticScenes.palette
    assert palette_of(CAMVID_CLASSES) == SyntheticScenes.palette  # the same ids and colours
    assert palette_of(["background", "cat", "dog"]) is None
    assert palette_of(list(reversed(CAMVID_CLASSES))) is None


def _checkpoint(path, class_names, palette):
    model = build_model("hrnetv2_w18s", num_classes=len(class_names))
    save_checkpoint({"model": model.state_dict(), "config": {"model": "hrnetv2_w18s"},
                     "class_names": class_names, "palette": palette}, path)
    return path


def test_load_gives_a_built_in_datasets_model_the_current_colours(tmp_path):
    old = _checkpoint(tmp_path / "camvid.pt", CAMVID_CLASSES, SEGNET)
    assert ainnoseg.load(old).meta.palette == palette_of(CAMVID_CLASSES)
    own = [(10, 20, 30), (40, 50, 60), (70, 80, 90)]
    mine = _checkpoint(tmp_path / "pets.pt", ["background", "cat", "dog"], own)
    assert ainnoseg.load(mine).meta.palette == own


def test_the_released_models_draw_with_colours_that_pass_the_check():
    for release in ainnoseg.list_released():
        model = ainnoseg.load(release["name"])
        assert separation(model.meta.palette)[0] >= MIN_SEPARATION, release["name"]
