import numpy as np
import pytest
import torch

from ainnoseg.viz import (ERROR_COLORS, colorize, draw_boundaries, error_map, label_boundaries,
                          legend, overlay)

PALETTE = [(200, 0, 0), (0, 200, 0), (0, 0, 200)]


def _two_regions(height=6, width=10, split=5):
    """Class 0 in columns [0, split), class 1 from `split` on."""
    labels = np.zeros((height, width), np.int64)
    labels[:, split:] = 1
    return labels


def test_colorize_maps_labels_to_palette_and_ignore_to_ignore_color():
    labels = np.array([[0, 1], [2, 255]])
    out = colorize(labels, PALETTE, ignore_color=(9, 8, 7))
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert out[0, 0].tolist() == [200, 0, 0] and out[0, 1].tolist() == [0, 200, 0]
    assert out[1, 0].tolist() == [0, 0, 200] and out[1, 1].tolist() == [9, 8, 7]
    np.testing.assert_array_equal(colorize(torch.from_numpy(labels), PALETTE),
                                  colorize(labels, PALETTE))


def test_overlay_blends_and_keeps_the_image_where_ignored():
    image = np.full((4, 4, 3), 100, np.uint8)
    labels = np.zeros((4, 4), np.int64)
    labels[0, 0] = 255
    out = overlay(image, labels, PALETTE, alpha=0.5)
    assert out[1, 1].tolist() == [150, 50, 50]
    assert out[0, 0].tolist() == [100, 100, 100]
    np.testing.assert_array_equal(overlay(image, labels, PALETTE, alpha=0.0), image)
    chw = torch.from_numpy(image).permute(2, 0, 1)  # torch images are channels first
    np.testing.assert_array_equal(overlay(chw, labels, PALETTE, alpha=0.5), out)


@pytest.mark.parametrize("width, columns", [(1, [4, 5]), (2, [3, 4, 5, 6])])
def test_label_boundaries_marks_the_columns_within_width(width, columns):
    marked = label_boundaries(_two_regions(), width=width)
    assert marked.dtype == bool and marked.shape == (6, 10)
    expected = np.zeros((6, 10), bool)
    expected[:, columns] = True
    np.testing.assert_array_equal(marked, expected)


def test_uniform_map_has_no_boundary_even_at_the_image_edge():
    assert not label_boundaries(np.ones((5, 7), np.uint8), width=3).any()


def test_draw_boundaries_paints_only_boundary_pixels():
    image = np.zeros((6, 10, 3), np.uint8)
    out = draw_boundaries(image, _two_regions(), color=(1, 2, 3))
    assert (out[:, [4, 5]] == [1, 2, 3]).all()
    assert (out[:, [0, 1, 2, 3, 6, 7, 8, 9]] == 0).all()


def test_error_map_colours_boundary_and_interior_errors():
    target = _two_regions(20, 20, split=10)
    target[0, 0] = 255
    pred = target.copy()
    pred[0, 0] = 1  # wrong, but on an ignored pixel
    pred[10, 10] = 0  # next to the boundary
    pred[5, 18] = 0  # far from it
    out = error_map(pred, target, boundary_width=2)
    assert out[10, 10].tolist() == list(ERROR_COLORS["boundary error"])
    assert out[5, 18].tolist() == list(ERROR_COLORS["interior error"])
    assert out[0, 0].tolist() == list(ERROR_COLORS["ignored"])
    correct = np.ones((20, 20), bool)
    correct[[10, 5, 0], [10, 18, 0]] = False
    assert (out[correct] == ERROR_COLORS["correct"]).all()


def test_error_map_default_band_is_two_percent_of_the_diagonal():
    target = _two_regions(100, 100, split=50)  # diagonal 141 px -> band of 3 px
    pred = target.copy()
    pred[50, 52] = 0  # 3 px right of the boundary
    pred[50, 53] = 0  # 4 px right of it
    out = error_map(pred, target)
    assert out[50, 52].tolist() == list(ERROR_COLORS["boundary error"])
    assert out[50, 53].tolist() == list(ERROR_COLORS["interior error"])


def test_legend_has_a_row_per_class():
    names = ["sky", "road", "car"]
    key = legend(names, PALETTE, swatch=16)
    assert key.dtype == np.uint8 and key.ndim == 3 and key.shape[2] == 3
    assert key.shape[0] == legend(names[:2], PALETTE, swatch=16).shape[0] + 20
    for i, color in enumerate(PALETTE):
        top = 4 + i * 20
        assert key[top + 8, 4 + 8].tolist() == list(color)  # the swatch
        assert (key[top:top + 16, 4 + 16 + 4:] < 100).any()  # its name, in black


@pytest.mark.parametrize("call", [
    lambda: overlay(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 12), np.int64), PALETTE),
    lambda: draw_boundaries(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 12), np.int64)),
    lambda: error_map(np.zeros((10, 10), np.int64), np.zeros((10, 12), np.int64)),
])
def test_shape_mismatch_names_both_shapes(call):
    with pytest.raises(ValueError, match="10x10.*10x12"):
        call()


def test_short_palette_and_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match="at least 4 colours"):
        colorize(np.array([[0, 3]]), PALETTE)
    with pytest.raises(ValueError, match="one colour per class"):
        legend(["a", "b", "c", "d"], PALETTE)
    with pytest.raises(ValueError, match="uint8"):
        overlay(np.zeros((2, 2, 3), np.float32), np.zeros((2, 2), np.int64), PALETTE)
    with pytest.raises(ValueError, match=r"\(H, W\) label map"):
        colorize(np.zeros((1, 2, 2), np.int64), PALETTE)
