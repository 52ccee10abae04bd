"""The Inside page under AppTest: for AinnoSeg, DANet and HRNetV2 checkpoints
it shows what the model has (and says what it lacks), the pixel inputs move
what is shown, a pixel outside the image is a message, and a click on the
prediction figure reads back as a pixel."""

import json
import sys

import numpy as np
import pytest

pytest.importorskip("streamlit",
                    reason="the dashboard tests need streamlit: pip install -e .[test]")
pytest.importorskip("plotly", reason="the Inside page draws with plotly: pip install -e .[test]")
from streamlit.testing.v1 import AppTest  # noqa: E402

from test_dashboard import APP, TIMEOUT, rerun, texts  # noqa: E402

sys.path.insert(0, str(APP.parent))
import widgets  # noqa: E402

SECTIONS = ("Dual attention", "Object-contextual representations (OCR)")


@pytest.fixture
def app(tmp_path, monkeypatch):
    """The dashboard on the Inside page, with its default checkpoint."""
    monkeypatch.setenv("AINNOSEG_RUNS", str(tmp_path / "runs"))
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    app.run()
    app.switch_page("inside.py")
    return rerun(app)


def figures(app):
    """{figure title: plotly spec} of the page's plotly charts."""
    specs = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    return {spec["layout"].get("title", {}).get("text", ""): spec for spec in specs}


def choose_checkpoint(app, name):
    box = app.selectbox(key="inside_model")
    box.select_index([option.split(" (")[0] for option in box.options].index(name))
    return rerun(app)


def test_ainnoseg_shows_every_part_and_follows_the_pixel(app):
    assert app.selectbox(key="inside_model").value == "synthetic/ainnoseg_w18s"
    assert not app.info and not app.error
    headings = [s.value for s in app.subheader]
    assert headings[0] == "Pixel (y=128, x=160): fence" and list(SECTIONS) == headings[1:]
    shown = figures(app)
    assert len(shown) == 5 and "Channel attention (67 x 67)" in shown
    rows = app.dataframe[0].value
    assert list(rows["output"]) == ["final"] * 3 + ["OCR regions (aux)"] * 3 + ["DA head"] * 3
    assert rows["class"].iloc[0] == "fence"
    looks = shown["Where position attention looks from the pixel"]
    app.number_input(key="inside_y").set_value(20)
    app.number_input(key="inside_x").set_value(170)
    rerun(app)
    assert app.subheader[0].value == "Pixel (y=20, x=170): sky"
    moved = figures(app)
    assert moved["Where position attention looks from the pixel"] != looks
    assert "OCR's soft object region of sky" in moved
    ring = moved["synthetic/ainnoseg_w18s: prediction (click a pixel)"]["data"][-1]
    assert (ring["x"], ring["y"]) == ([170], [20])


def test_a_pixel_outside_the_image_is_a_message(app):
    app.number_input(key="inside_y").set_value(300)
    rerun(app)
    assert "outside the 256x320 image: y goes from 0 to 255" in texts(app.error)
    assert not app.dataframe


@pytest.mark.parametrize("name, lacks, sections", [
    ("synthetic/danet_r18", "danet_r18 has no OCR", SECTIONS[:1]),
    ("synthetic/hrnetv2_w18s", "hrnetv2_w18s has no position attention, channel attention "
                               "or OCR", ())])
def test_a_model_without_a_part_says_what_it_lacks(app, name, lacks, sections):
    choose_checkpoint(app, name)
    assert lacks in texts(app.info)
    assert tuple(s.value for s in app.subheader[1:]) == sections
    assert app.dataframe[0].value["output"].iloc[0] == "final"


def test_a_click_on_the_prediction_is_a_pixel():
    labels = np.array([[0, 1, 1], [2, 2, 255]])
    figure = widgets.prediction_figure(np.zeros((2, 3, 3), np.uint8), labels,
                                       [(0, 0, 0), (9, 9, 9), (99, 99, 99)], ["a", "b", "c"])
    points = {trace.name: list(zip(trace.y, trace.x)) for trace in figure.data[1:]}
    assert points == {"a": [(0, 0)], "b": [(0, 1), (0, 2)], "c": [(1, 0), (1, 1)],
                      "no class": [(1, 2)]}
    # what st.plotly_chart returns for a click on the point of pixel (y=1, x=2)
    assert widgets.clicked_pixel({"points": [{"x": 2, "y": 1, "curve_number": 1}]}) == (1, 2)
    assert widgets.clicked_pixel({"points": []}) is None
    assert widgets.clicked_pixel(None) is None


def test_a_large_prediction_gets_a_clickable_point_every_few_pixels():
    labels = np.zeros((400, 600), np.int64)
    figure = widgets.prediction_figure(np.zeros((400, 600, 3), np.uint8), labels, [(0, 0, 0)],
                                       ["a"], point=(399, 599))
    points = figure.data[1]
    assert len(points.x) <= widgets.CLICK_POINTS and set(np.unique(points.x) % 2) == {0}
    assert max(points.x) == 598 and max(points.y) == 398
    assert (figure.data[-1].x, figure.data[-1].y) == ((599,), (399,))  # the ring


def test_a_prediction_figure_is_as_tall_as_its_image_at_the_width_it_is_shown():
    labels = np.zeros((256, 320), np.int64)
    figure = widgets.prediction_figure(np.zeros((256, 320, 3), np.uint8), labels, [(0, 0, 0)],
                                       ["a"], size=300)
    assert figure.layout.height == 240
