import numpy as np
import pytest

from ainnoseg.config import load_config, save_config
from ainnoseg.data.synthetic import CLASS_NAMES
from ainnoseg.engine.pseudo_label import write_png
from ainnoseg.files import write_json
from ainnoseg.runs import load_run
from ainnoseg.runs import rounds

STEMS = ("00000", "00001", "00002")


def _val(mean_iou, road):
    class_iou = {name: 0.5 for name in CLASS_NAMES}
    class_iou.update(road=road, pole=None)
    return {"mean_iou": mean_iou, "pixel_accuracy": 0.9, "boundary_iou": 0.4, "score": 0.7,
            "class_iou": class_iou}


def _stats(teacher, kept_share, agreement):
    pixels = {name: 10 for name in CLASS_NAMES}
    return {"teacher": teacher, "threshold": 0.5, "scales": [1.0], "flip": False,
            "images": 3, "kept_share": kept_share, "agreement": agreement, "mean_iou": 0.6,
            "class_pixels": pixels, "class_share": {name: 1 / 11 for name in CLASS_NAMES}}


@pytest.fixture
def run_dir(tmp_path):
    """A self-training run of two rounds, as `selftrain` leaves it, with
    checkpoint paths recorded from another working directory."""
    run = tmp_path / "st"
    config = load_config("configs/selftrain_synthetic_quick.yaml",
                         ["unlabeled_limit=3", "rounds=2", f"run_dir={run}"])
    run.mkdir()
    save_config(config, run / "selftrain.yaml")
    elsewhere = "/old/place/st"
    write_json(run / "round_0" / "metrics.json",
               {"checkpoint": f"{elsewhere}/round_0/last.pt", **_val(0.50, 0.80)})
    (run / "round_0" / "last.pt").write_bytes(b"weights")
    agree = np.zeros((8, 10), np.uint8)
    half = agree.copy()
    half[:, 5:] = 3
    unsure = agree.copy()
    unsure[:4] = 255
    labels = {1: (agree, agree, unsure), 2: (agree, half, agree)}
    for index in (1, 2):
        folder = run / f"round_{index}"
        for stem, label in zip(STEMS, labels[index]):
            write_png(label, folder / "pseudo" / f"{stem}.png")
        teacher = "round_0/last.pt" if index == 1 else "round_1/finetune/last.pt"
        write_json(folder / "pseudo_stats.json",
                   _stats(f"{elsewhere}/{teacher}", 0.9, None if index == 1 else 0.8))
        write_json(folder / "metrics.json",
                   {"checkpoint": f"{elsewhere}/round_{index}/finetune/last.pt",
                    **_val(0.50 + index / 100, 0.80 + index / 10)})
    return run


def test_the_round_table_has_val_scores_pseudo_label_statistics_and_time(run_dir):
    table = rounds.round_table(load_run(run_dir).rounds)
    assert [row["round"] for row in table] == [0, 1, 2]
    assert table[0]["mIoU"] == 0.5 and table[0]["kept"] is None
    assert table[2]["mIoU"] == pytest.approx(0.52) and table[2]["agreement"] == 0.8
    assert table[1]["pseudo mIoU"] == 0.6 and table[1]["Boundary IoU"] == 0.4


def test_class_iou_cells_give_each_round_its_change_against_the_teacher(run_dir):
    cells = rounds.class_iou_cells(load_run(run_dir).rounds)
    assert len(cells) == 3 * len(CLASS_NAMES)
    road = {cell["round"]: cell for cell in cells if cell["class"] == "road"}
    assert road[0]["delta"] == 0 and road[2]["delta"] == pytest.approx(0.2)
    pole = [cell for cell in cells if cell["class"] == "pole"]
    assert all(cell["iou"] is None and cell["delta"] is None for cell in pole)


def test_pseudo_label_cells_are_the_class_histogram_of_each_round(run_dir):
    cells = rounds.pseudo_label_cells(run_dir)
    assert {cell["round"] for cell in cells} == {1, 2}
    assert sum(cell["share"] for cell in cells if cell["round"] == 1) == pytest.approx(1)


def test_checkpoints_recorded_elsewhere_are_found_inside_the_run(run_dir):
    found = rounds.round_checkpoints(load_run(run_dir).rounds, run_dir)
    assert found["round 0 (teacher)"] == run_dir / "round_0" / "last.pt"
    assert str(found["round 2 (student)"]) == "/old/place/st/round_2/finetune/last.pt"  # absent
    teacher = rounds.round_teacher(run_dir, 1)
    assert teacher["checkpoint"] == run_dir / "round_0" / "last.pt"
    assert teacher["threshold"] == 0.5 and teacher["scales"] == (1.0,)
    assert rounds.round_teacher(run_dir, 3) is None


def test_pool_images_come_with_each_rounds_pseudo_label(run_dir):
    labels = rounds.pseudo_labels(run_dir, "00001")
    assert sorted(labels) == [1, 2] and labels[2][0, 9] == 3
    pool = rounds.open_run_pool(run_dir)
    assert pool.stems == list(STEMS)
    image, truth = rounds.pool_sample(pool, run_dir, "00002")  # rendered: no pool/ file yet
    assert image.shape == (256, 320, 3) and truth.shape == (256, 320)
    write_png(np.full((8, 10, 3), 7, np.uint8), run_dir / "pool" / "00002.png")
    image, _ = rounds.pool_sample(pool, run_dir, "00002")
    assert image.shape == (8, 10, 3) and (image == 7).all()
    names, palette = rounds.run_classes(run_dir)
    assert names == CLASS_NAMES and len(palette) == 11


def test_disagreement_counts_pixels_two_rounds_kept_and_labelled_apart():
    same = np.zeros((2, 4), np.uint8)
    other = np.array([[0, 0, 1, 1], [0, 0, 1, 1]], np.uint8)
    ignored = np.array([[255, 255, 255, 255], [0, 0, 0, 0]], np.uint8)
    assert rounds.disagreement([same, same]) == (0.0, 0.0)
    assert rounds.disagreement([same, other]) == (0.5, 0.0)
    share, ignored_share = rounds.disagreement([ignored, other])
    assert share == 0.5 and ignored_share == 0.25  # only the bottom row is compared
    assert rounds.disagreement([same]) == (None, 0.0)


def test_the_ranking_puts_the_most_disputed_pool_image_first(run_dir):
    ranking = rounds.disagreement_ranking(run_dir)
    assert [row["stem"] for row in ranking] == ["00001", "00002", "00000"]
    assert ranking[0]["disagreement"] == 0.5 and ranking[0]["rounds"] == 2
    assert ranking[1]["ignored_share"] == 0.25  # 00002: half ignored in one of two rounds


def test_the_teachers_confidence_is_stored_with_the_pseudo_labels_and_read_back(tmp_path):
    """label_pool keeps each image's confidence, so the Rounds page reads it
    instead of running the teacher again; it agrees with the threshold that
    made the pseudo-label."""
    import torch

    from ainnoseg import build_model
    from ainnoseg.data import open_pool
    from ainnoseg.engine.pseudo_label import label_pool

    torch.manual_seed(0)
    model = build_model("hrnetv2_w18s", num_classes=len(CLASS_NAMES)).eval()
    pool = open_pool("synthetic", "test", limit=2)
    run = tmp_path / "st"
    threshold = 0.9
    label_pool(model, pool, run / "round_1" / "pseudo", threshold=threshold, amp="off",
               confidence_dir=run / "round_1" / "confidence")
    for stem in pool.stems:
        shades = rounds.teacher_confidence(run, 1, stem)
        label = rounds.pseudo_labels(run, stem)[1]
        assert shades.shape == label.shape and shades.dtype == np.float32
        assert 0 <= shades.min() and shades.max() <= 1 and shades.std() > 0
        step = 1 / 255
        assert (label[shades < threshold - step] == 255).all()
        assert (label[shades > threshold + step] != 255).all()
        assert ((label == 255).mean() > 0) and ((label != 255).mean() > 0)
    assert rounds.teacher_confidence(run, 2, pool.stems[0]) is None
