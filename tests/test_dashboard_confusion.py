"""The Predictions page counts where the first checkpoint's pixels go over
the first images of a split: two heatmaps (all pixels, boundary pixels),
each with its largest confusions in words."""

import json

import pytest

pytest.importorskip("streamlit",
                    reason="the dashboard tests need streamlit: pip install -e .[test]")
from streamlit.testing.v1 import AppTest  # noqa: E402

from test_dashboard import APP, TIMEOUT, rerun, texts  # noqa: E402


def test_the_predictions_page_draws_both_confusion_matrices_on_request(tmp_path, monkeypatch):
    monkeypatch.setenv("AINNOSEG_RUNS", str(tmp_path / "runs"))
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    app.run()
    app.switch_page("predictions.py")
    rerun(app)
    app.slider(key="confusion_limit").set_value(2)
    rerun(app)
    app.button(key="confusion_go").click()
    rerun(app)
    assert not app.exception, [e.value for e in app.exception]
    assert not [button for button in app.button if button.key == "confusion_go"]  # counted
    charts = [json.loads(chart.proto.spec) for chart in app.get("vega_lite_chart")]
    titles = [chart.get("title") for chart in charts]
    assert titles[-2:] == ["All pixels", "Boundary pixels"]
    assert charts[-1]["encoding"]["y"]["field"] == "true"
    assert "on 2 images" in texts(app.caption)
    confusions = [m.value for m in app.markdown if " -> " in m.value or "No confusions" in m.value]
    assert len(confusions) == 2 and "% of" in confusions[0]
    download = app.get("download_button")[-1]
    assert download.proto.label == "Download both matrices (CSV)"
