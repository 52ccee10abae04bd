"""ainnoseg.analysis.inside: the parts of one forward pass, checked against the modules' own formulas."""

import numpy as np
import pytest
import torch

import ainnoseg
from ainnoseg.analysis import inside as inspect
from ainnoseg.models.attention import PositionAttention, naive_position_attention


@pytest.fixture(scope="module")
def ainnoseg_model():
    torch.manual_seed(0)
    return ainnoseg.build_model("ainnoseg_w18s", num_classes=3).eval()


def image(height=64, width=96, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_every_part_of_ainnoseg_is_kept(ainnoseg_model):
    inside = inspect.look_inside(ainnoseg_model, image())
    assert inside.labels.shape == (64, 96)
    assert [b.shape[0] for b in inside.branches] == [18, 36, 72, 144]
    assert [tuple(b.shape[1:]) for b in inside.branches] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    channels = inside.position_input.shape[0]
    assert inside.channel_attention.shape == (channels, channels)
    torch.testing.assert_close(inside.channel_attention.sum(1), torch.ones(channels))
    assert inside.regions.shape == (3, 16, 24)
    torch.testing.assert_close(inside.regions.flatten(1).sum(1), torch.ones(3))


def test_attention_row_is_a_row_of_danets_map(ainnoseg_model):
    inside = inspect.look_inside(ainnoseg_model, image())
    module = inside.position_module
    features = inside.position_input[None]
    with torch.no_grad():
        query = module.query_conv(features).flatten(2).transpose(1, 2)
        key = module.key_conv(features).flatten(2).transpose(1, 2)
        # naive attention applied to the identity gives the whole N x N map
        positions = query.shape[1]
        full = naive_position_attention(query, key, torch.eye(positions)[None])[0]
    row = inspect.attention_row(inside, (40, 10))  # feature pixel (10, 2) at stride 4
    torch.testing.assert_close(row.flatten(), full[10 * 24 + 2])
    with pytest.raises(ValueError, match="outside"):
        inspect.attention_row(inside, (64, 0))


def test_padded_inputs_are_cropped_to_the_image(ainnoseg_model):
    inside = inspect.look_inside(ainnoseg_model, image(70, 100))
    assert inside.padded_size == (96, 128)
    assert tuple(inside.branches[0].shape[1:]) == (18, 25)
    assert tuple(inspect.attention_row(inside, (69, 99)).shape) == (18, 25)
    assert inspect.upsample(inside.regions[0], (70, 100)).shape == (70, 100)


def test_models_without_a_part_leave_it_none():
    hrnet = ainnoseg.build_model("hrnetv2_w18s", num_classes=3).eval()
    inside = inspect.look_inside(hrnet, image())
    assert inside.position_input is None and inside.regions is None
    assert len(inside.branches) == 4
    with pytest.raises(ValueError, match="no position attention"):
        inspect.attention_row(inside, (0, 0))
    danet = ainnoseg.build_model("danet_r18", num_classes=3).eval()
    inside = inspect.look_inside(danet, image())
    assert inside.branches is None and inside.channel_attention.shape == (128, 128)
    assert inspect.attention_row(inside, (5, 5)).shape == (8, 12)


def test_feature_picture_and_point_of():
    features = torch.zeros(5, 6, 8)
    features[0, :, 4:] = 1.0  # two regions the first component tells apart
    picture = inspect.feature_picture(features)
    assert picture.shape == (6, 8, 3) and picture.dtype == np.uint8
    assert picture[0, 0, 0] != picture[0, 7, 0]
    labels = np.zeros((9, 9), np.int64)
    labels[2:7, 2:7] = 1
    assert inspect.point_of(labels, 1) == (4, 4)
    assert inspect.point_of(labels, 2) is None
    pole = np.zeros((11, 9), np.int64)
    pole[:, 3:6] = 1  # a thin class from the top of the image to its bottom
    assert inspect.point_of(pole, 1) == (5, 4)


@pytest.mark.parametrize("energy", ["sum", "mean"])
def test_channel_attention_matrix_is_the_modules_own(energy):
    from ainnoseg.models.attention import ChannelAttention

    torch.manual_seed(0)
    features = torch.randn(6, 5, 7)
    cam = ChannelAttention(energy=energy)
    torch.nn.init.constant_(cam.gamma, 1.0)
    with torch.no_grad():
        attended = (cam(features[None])[0] - features).flatten(1)
    matrix = inspect.channel_attention_matrix(features, energy)
    torch.testing.assert_close(matrix @ features.flatten(1), attended)


def test_attention_sharpness_of_one_hot_and_flat_rows():
    one_hot = inspect.attention_sharpness(torch.eye(4))
    assert one_hot["max"] == 1.0 and one_hot["entropy"] == pytest.approx(0.0, abs=1e-6)
    flat = inspect.attention_sharpness(torch.full((4, 4), 0.25))
    assert flat["max"] == 0.25 and flat["entropy"] == pytest.approx(np.log(4))
    assert flat["uniform_entropy"] == pytest.approx(np.log(4))


def test_inside_prints_shapes_not_tensors(ainnoseg_model):
    text = repr(inspect.look_inside(ainnoseg_model, image(70, 100)))
    assert len(text.splitlines()) <= 8 and len(text) < 500, text
    assert "padded to 96x128" in text and "branches 18x18x25" in text and "regions 3x18x25" in text
    hrnet = ainnoseg.build_model("hrnetv2_w18s", num_classes=3).eval()
    assert "none: position_input, channel_attention, regions" in repr(
        inspect.look_inside(hrnet, image()))


def test_class_shares_count_the_pixels_of_each_cell():
    labels = np.array([[0, 0, 1, 1, 1, 255],
                       [0, 1, 1, 1, 1, 255]])
    # 2x6 image padded to 2x8, a 1x4 feature grid: cells of 2 columns, the last one padding
    shares = inspect.class_shares(labels, (1, 4), (2, 8), num_classes=2)
    torch.testing.assert_close(shares[0, 0], torch.tensor([0.75, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(shares[1, 0], torch.tensor([0.25, 1.0, 0.5, 0.0]))  # 255 in no class


def two_region_inside(sharp):
    """An Inside of an 8x8 image (one cell per pixel) whose position attention
    looks at the cells of the query's own region when `sharp`, else evenly."""
    labels = np.zeros((8, 8), np.int64)
    labels[:, :2] = 1  # class 1 covers a quarter of the image
    features = torch.zeros(16, 8, 8)
    features[0], features[1] = torch.from_numpy(labels == 0), torch.from_numpy(labels == 1)
    module = PositionAttention(16)  # query and key of 2 channels
    with torch.no_grad():
        for conv in (module.query_conv, module.key_conv):
            conv.weight.zero_()
            conv.bias.zero_()
            if sharp:  # query . key = 100 within a region, 0 across
                conv.weight[0, 0, 0, 0] = conv.weight[1, 1, 0, 0] = 10.0
    return labels, inspect.Inside(image=np.zeros((8, 8, 3), np.uint8), labels=labels,
                                  padded_size=(8, 8), position_input=features,
                                  position_module=module)


def test_attention_on_class_compares_weight_with_area():
    labels, flat = two_region_inside(sharp=False)
    share = inspect.attention_on_class(flat, (4, 0), labels)
    assert share["class"] == 1
    assert share["mass"] == pytest.approx(0.25) and share["area"] == pytest.approx(0.25)
    assert share["lift"] == pytest.approx(1.0)
    labels, sharp = two_region_inside(sharp=True)
    share = inspect.attention_on_class(sharp, (4, 0), labels)
    assert share["mass"] > 0.99 and share["lift"] > 3.9
    other = inspect.attention_on_class(sharp, (4, 0), labels, class_id=0)
    assert other["mass"] < 0.01 and other["area"] == pytest.approx(0.75)


class Pairs(torch.utils.data.Dataset):
    """A labelled dataset of (image, mask) pairs, as built without transforms."""

    class_names = ["a", "b", "c"]
    num_classes, ignore_index = 3, 255

    def __init__(self, count=2):
        self.count = count

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        mask = torch.zeros(64, 96, dtype=torch.int64)
        mask[:, 48:] = 1
        mask[:8, :8] = 255
        return torch.from_numpy(image(seed=index)).permute(2, 0, 1), mask


def test_attention_by_class_has_one_row_per_class_present(ainnoseg_model):
    rows = inspect.attention_by_class(ainnoseg_model, Pairs(), range(2))
    assert [row["class"] for row in rows] == ["a", "b"]
    assert all(row["queries"] == 2 for row in rows)
    assert rows[0]["area"] == pytest.approx(0.5 - 64 / (64 * 96), abs=0.02)
    for row in rows:
        assert 0 <= row["mass"] <= 1 and row["peak"] >= 1
        assert row["lift"] == pytest.approx(row["mass"] / row["area"])
