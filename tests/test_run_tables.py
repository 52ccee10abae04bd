from datetime import datetime

import pytest

from ainnoseg.runs import Run
from ainnoseg.runs.tables import (config_diff, curve_rows, format_seconds, position,
                                   released_table, runs_table)


@pytest.mark.parametrize("seconds, text", [
    (None, ""), (42.4, "42 s"), (425, "7 min 05 s"), (7500, "2 h 05 min")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def _selftrain(status="running"):
    return Run(path="runs/st", name="st", kind="selftrain", status=status, model="hrnetv2_w18s",
               dataset="synthetic", round=1, phase="student", step=40, total=60, eta_s=125,
               rounds=[{"round": 0}, {"round": 1}, {"round": 2}],
               best={"val": {"mean_iou": 0.5, "boundary_iou": 0.3}},
               started=1_700_000_000.0, duration_s=3700,
               curves={"loss": [
                   {"phase": "teacher", "round": 0, "step": 10, "loss": 2.0},
                   {"phase": "teacher", "round": 0, "step": 60, "loss": 1.0},
                   {"phase": "student", "round": 1, "step": 10, "loss": 1.5},
                   {"phase": "student", "round": 1, "step": 20, "loss": None}], "val": []})


def test_a_runs_row_says_where_a_run_stands_and_what_it_reached():
    row = runs_table([_selftrain()])[0]
    assert row["where"] == "round 1 student 40/60" and row["ETA"] == "2 min 05 s"
    assert row["rounds"] == 2 and row["best mIoU"] == 0.5 and row["best Boundary IoU"] == 0.3
    assert row["started"] == datetime.fromtimestamp(1_700_000_000.0)
    assert row["duration"] == "1 h 01 min"
    done = runs_table([_selftrain("finished")])[0]
    assert done["where"] == "" and done["ETA"] == ""
    plain = Run(path="runs/t", name="t", kind="train", status="failed")
    assert runs_table([plain])[0]["rounds"] is None and position(plain) == ""


def test_curves_of_a_selftraining_run_follow_one_another():
    rows = curve_rows([_selftrain()], "loss", "loss")
    assert [row["run step"] for row in rows] == [10, 60, 70]  # the student starts after 60
    assert rows[2]["phase"] == "student" and rows[2]["step"] == 10
    assert [row["part"] for row in rows] == ["round 0 teacher"] * 2 + ["round 1 student"]


def test_released_table_keeps_the_manifest_scores():
    release = {"name": "camvid/x", "model": "x", "mean_iou": 61.8, "ms_mean_iou": 62.3,
               "boundary_iou": 51.0, "pixel_accuracy": 92.2, "iterations": 4600,
               "megabytes": 7.9}
    row = released_table([release])[0]
    assert row["val mIoU %"] == 61.8 and row["MB"] == 7.9 and row["iterations"] == 4600


def test_a_config_diff_lists_only_the_keys_that_differ():
    first = Run(path="runs/a", name="a", kind="train", status="finished",
                config={"lr": 0.01, "seed": 0, "x": 1})
    second = Run(path="runs/b", name="b", kind="train", status="finished",
                 config={"lr": 0.02, "seed": 0, "y": 2})
    assert config_diff(first, second) == [{"key": "lr", "A": 0.01, "B": 0.02},
                                          {"key": "x", "A": 1, "B": None},
                                          {"key": "y", "A": None, "B": 2}]
    assert config_diff(first, first) == []
