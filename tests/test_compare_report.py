"""`ainnoseg.analysis.compare_report`: the sentences of a comparison."""

import numpy as np

from ainnoseg.analysis import compare_report
from ainnoseg.analysis.compare import Prediction

SCORES = {"mean_iou": 0.612, "pixel_accuracy": 0.92, "boundary_iou": 0.501,
          "boundary_fscore": None, "boundary_errors": 0.05, "interior_errors": 0.03}


def test_a_column_caption_names_the_model_its_time_parameters_and_scores():
    prediction = Prediction("HRNet", np.zeros((2, 2)), 0.4321, 3_940_000, "camvid/hrnetv2_w18s")
    caption = compare_report.column_caption(prediction)
    assert caption == ("**HRNet** `camvid/hrnetv2_w18s`  \n"
                       "0.43 s on this machine · 3.94 M parameters")
    caption = compare_report.column_caption(prediction, SCORES)
    assert "mIoU 61.2 % · pixel acc. 92.0 % · Boundary IoU 50.1 % · boundary F n/a" in caption
    assert "errors: 5.0 % near boundaries, 3.0 % inside regions" in caption


def test_the_disagreement_text_says_how_much_and_where():
    summary = {"any": 0.2, "two": 0.15, "three or more": 0.05}
    assert compare_report.disagreement_text(summary, 3) == (
        "The 3 models give different labels to 20.0 % of the pixels "
        "(two labels: 15.0 %, three or more: 5.0 %).")
    assert "(two" not in compare_report.disagreement_text(summary, 2)
    text = compare_report.disagreement_text({**summary, "near_boundary": 0.8, "band": 0.25}, 3)
    assert text.endswith("80.0 % of the disagreements lie within the Boundary IoU band of a "
                         "ground-truth boundary, a band that covers 25.0 % of the labelled "
                         "pixels.")
    assert "One model only" in compare_report.disagreement_text(summary, 1)


def test_the_scale_change_text_lists_the_scales_changes_and_scores():
    change = {"changed": 0.031, "transitions": [("Road", "Pavement", 0.011)],
              "single": SCORES, "multi": {**SCORES, "mean_iou": 0.63}}
    text = compare_report.scale_change_text("AinnoSeg", change, (0.75, 1.0, 1.25), (0.5, 4.0))
    assert text.startswith("**AinnoSeg**, multi-scale (0.75, 1, 1.25) + flip against "
                           "single-scale: 3.1 % of the pixels changed label (0.50 s against "
                           "4.00 s).")
    assert "Most changes: Road to Pavement 1.1 %." in text
    assert "mIoU 61.2 % to 63.0 %." in text and "Boundary IoU 50.1 % to 50.1 %." in text
