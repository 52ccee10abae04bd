"""The dashboard under streamlit's AppTest: the checkpoint picker shows a
release's model card, an upload gets a note on what the models were trained
for, the worst-images table is narrow and opens an image from a click on any
cell, and the Mosaic page says what a sample number is."""

import importlib.util
import io

import pytest

pytest.importorskip("streamlit",
                    reason="the dashboard tests need streamlit: pip install -e .[test]")
from PIL import Image  # noqa: E402
from streamlit.proto.Dataframe_pb2 import Dataframe as DataframeProto  # noqa: E402

import ainnoseg  # noqa: E402

from test_dashboard import APP, open_app, rerun as _rerun, texts as _texts  # noqa: E402


def _open(page, monkeypatch, tmp_path):
    monkeypatch.setenv("AINNOSEG_RUNS", str(tmp_path / "runs"))
    return open_app(page)


def _widgets():
    spec = importlib.util.spec_from_file_location("dashboard_widgets",
                                                  APP.parent / "widgets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checkpoint_picker_shows_the_chosen_releases_card(tmp_path, monkeypatch):
    app = _open("predictions.py", monkeypatch, tmp_path)
    cards = {release["name"]: release["card"] for release in ainnoseg.list_released()}
    chosen = app.selectbox(key="pred_a").value
    assert cards[chosen] in [caption.value for caption in app.caption]
    assert "release on synthetic train" in _texts(app.caption)
    app.selectbox(key="pred_a").select("camvid/ainnoseg_w18s")
    _rerun(app)
    assert cards["camvid/ainnoseg_w18s"] in [caption.value for caption in app.caption]
    assert "360 x 480" in _texts(app.caption)


def test_an_upload_gets_a_note_on_what_the_models_were_trained_for(tmp_path, monkeypatch):
    app = _open("predictions.py", monkeypatch, tmp_path)
    app.radio(key="pred_source").set_value("upload")
    _rerun(app)
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (90, 120, 60)).save(buffer, "PNG")
    app.file_uploader(key="pred_upload").upload("holiday.png", buffer.getvalue())
    _rerun(app)
    assert ("These synthetic models were trained for synthetic and work on the embedded "
            "procedural street scenes") in _texts(app.warning)


def test_the_worst_images_table_is_narrow_and_a_click_on_any_cell_opens_its_image(
        tmp_path, monkeypatch):
    app = _open("predictions.py", monkeypatch, tmp_path)
    app.selectbox(key="pred_b").select_index(2)
    _rerun(app)
    first, second = app.selectbox(key="pred_a").value, app.selectbox(key="pred_b").value
    app.slider(key="worst_limit").set_value(2)
    _rerun(app)
    # The page keeps scores for the server's life: an earlier test in this
    # process may have scored these two checkpoints already.
    if any(button.key == "worst_go" for button in app.button):
        app.button(key="worst_go").click()
        _rerun(app)
    table = app.dataframe[-1]
    shown = list(table.proto.column_order)
    assert shown == ["name", "mIoU A", "mIoU B", "mIoU gain", "Boundary IoU A",
                     "Boundary IoU B"]
    assert set(table.value.columns) == {"index", *shown}
    assert f"A = {first}, B = {second}" in _texts(app.caption)
    assert DataframeProto.SelectionMode.SINGLE_CELL in table.proto.selection_mode


def test_a_click_selects_the_row_of_its_cell():
    clicked_row = _widgets().clicked_row
    assert clicked_row({"rows": [2], "columns": [], "cells": []}) == 2
    assert clicked_row({"rows": [], "columns": [], "cells": [(3, "mIoU A")]}) == 3
    assert clicked_row({"rows": [], "columns": ["name"], "cells": []}) is None


def test_the_mosaic_page_says_a_sample_number_is_a_draw_of_the_training_images(
        tmp_path, monkeypatch):
    app = _open("mosaic.py", monkeypatch, tmp_path)
    number = app.number_input(key="mosaic_first")
    assert "any number: each picks 4 of the 400 training images" in number.label
    number.set_value(99999)
    _rerun(app)
    assert [s.value for s in app.subheader][:1] == ["Sample 99999"] and not app.error
    assert "no image index" in _texts(app.caption)


def test_worst_images_puts_each_metric_of_the_checkpoints_side_by_side():
    from ainnoseg.analysis import worst_images

    def rows(miou):
        return [{"index": 0, "name": "a", "mean_iou": miou, "boundary_iou": 0.1,
                 "pixel_accuracy": 0.9}]

    table = worst_images({"A": rows(0.5), "B": rows(0.75)}, metrics=("mean_iou", "boundary_iou"))
    assert list(table[0]) == ["index", "name", "mIoU A", "mIoU B", "mIoU gain",
                              "Boundary IoU A", "Boundary IoU B"]
    assert table[0]["mIoU gain"] == 0.25
    assert list(worst_images({"A": rows(0.5)})[0]) == ["index", "name", "mIoU A",
                                                       "Boundary IoU A", "pixel acc. A"]
