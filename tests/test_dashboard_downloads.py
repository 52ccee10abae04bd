"""The Predictions page offers each checkpoint's label map and overlay as PNG
files, the image's scores and the worst-images table as CSV; hovering a
prediction names the class under the pointer."""

import io
import json

import pytest
from PIL import Image

from ainnoseg.data import SyntheticScenes

pytest.importorskip("streamlit",
                    reason="the dashboard tests need streamlit: pip install -e .[test]")

from test_dashboard import open_app, rerun, runs_root  # noqa: E402, F401


def test_the_predictions_page_offers_labels_overlays_and_scores(runs_root):
    app = open_app("predictions.py")
    offered = [button.proto.label for button in app.get("download_button")]
    assert offered[:3] == ["Label map (PNG)", "Overlay (PNG)", "Scores on this image (CSV)"]
    app.selectbox(key="pred_b").set_value(app.selectbox(key="pred_b").options[2])
    rerun(app)
    offered = [button.proto.label for button in app.get("download_button")]
    assert offered.count("Label map (PNG)") == 2 and offered.count("Overlay (PNG)") == 2
    app.slider(key="worst_limit").set_value(2)
    rerun(app)
    # The scores are kept for the server's life: an earlier test may have scored these.
    if any(button.key == "worst_go" for button in app.button):
        app.button(key="worst_go").click()
        rerun(app)
    assert "Per-image scores (CSV)" in [b.proto.label for b in app.get("download_button")]


def test_an_upload_without_labels_offers_pictures_but_no_scores(runs_root):
    buffer = io.BytesIO()
    Image.new("RGB", (128, 96), (90, 120, 60)).save(buffer, "PNG")
    app = open_app("predictions.py")
    app.radio(key="pred_source").set_value("upload")
    rerun(app)
    app.file_uploader(key="pred_upload").upload("my photo.png", buffer.getvalue())
    rerun(app)
    offered = [button.proto.label for button in app.get("download_button")]
    assert offered == ["Label map (PNG)", "Overlay (PNG)"]


def test_hovering_a_prediction_names_the_class_under_the_pointer(runs_root):
    app = open_app("predictions.py")
    figure = json.loads(app.get("plotly_chart")[0].proto.spec)
    hovered = {trace["name"] for trace in figure["data"] if trace.get("hovertemplate")}
    classes = {"sky", "building", "road", "car"}  # in every synthetic scene's prediction
    assert hovered & classes and hovered <= set(SyntheticScenes.class_names) | {"no class"}
    assert all("%{fullData.name}" in trace["hovertemplate"]
               for trace in figure["data"] if trace.get("hovertemplate"))
