"""The Runs page's predictions over training: a step slider over the saved
evaluations (and, for a self-training run, a round slider and its training
runs) shows each chosen val image, its ground truth and the prediction then;
a run without them, or with a damaged file, is a sentence on the page."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit",
                    reason="the dashboard tests need streamlit: pip install -e .[test]")
from streamlit.testing.v1 import AppTest  # noqa: E402

from ainnoseg.config import load_config, save_config  # noqa: E402
from ainnoseg.data.synthetic import CLASS_NAMES, PALETTE  # noqa: E402
from ainnoseg.runs import snapshots  # noqa: E402

APP = Path(__file__).resolve().parents[1] / "app" / "dashboard.py"
SIZE = (48, 64)


def _training_run(run_dir, steps=(2, 4), images=2):
    """A training run's config and snapshots (no training): the prediction of
    image 0 is class `step` everywhere, so each step's picture differs."""
    run_dir.mkdir(parents=True)
    save_config(load_config("configs/synthetic_tiny.yaml", [f"run_dir={run_dir}"]),
                run_dir / "config.yaml")
    image = np.full((*SIZE, 3), 90, np.uint8)
    truth = np.zeros(SIZE, np.uint8)
    truth[SIZE[0] // 2:] = 3
    samples = [(index, f"val {index:05d}", image, truth) for index in range(images)]
    snapshots.record_images(run_dir, "val", samples, CLASS_NAMES, PALETTE)
    for step in steps:
        predictions = {index: np.full(SIZE, step % 11, np.uint8) for index in range(images)}
        snapshots.save_predictions(run_dir, step, predictions, PALETTE)
    return run_dir


@pytest.fixture
def runs_root(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    monkeypatch.setenv("AINNOSEG_RUNS", str(root))
    return root


def _page(run_name):
    app = AppTest.from_file(str(APP), default_timeout=240)
    app.run()
    app.selectbox(key="runs_one").select(run_name).run()
    _no_failure(app)
    return app


def _no_failure(app):
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def _pictures(app):
    """{caption: image url} of the pictures on the page (a url names its content)."""
    return {caption: image.proto.imgs[i].url for image in app.get("image")
            for i, caption in enumerate(image.captions)}


def test_the_step_slider_shows_the_predictions_of_the_step_picked(runs_root):
    run_dir = _training_run(runs_root / "trained", steps=(2, 4, 6))
    app = _page("trained")
    slider = app.select_slider(key=f"snapshot_step_{run_dir}")
    assert slider.options == ["2", "4", "6"] and slider.value == 6  # the latest first
    late = _pictures(app)
    assert {"val 00000", "val 00000: ground truth", "val 00000: step 6",
            "val 00001: step 6"} <= set(late)
    assert any(caption.startswith("Step 6 of 2, 4, 6: 2 images of the val split")
               for caption in (c.value for c in app.caption))
    slider.set_value(2).run()
    _no_failure(app)
    early = _pictures(app)
    assert "val 00000: step 2" in early and "val 00000: step 6" not in early
    assert early["val 00000: step 2"] != late["val 00000: step 6"]  # another picture
    assert early["val 00000: ground truth"] == late["val 00000: ground truth"]
    assert "classes" in early  # the legend


def test_a_run_without_predictions_over_training_says_so(runs_root):
    run_dir = runs_root / "old"
    run_dir.mkdir(parents=True)
    save_config(load_config("configs/synthetic_tiny.yaml", [f"run_dir={run_dir}"]),
                run_dir / "config.yaml")
    app = _page("old")
    assert any(c.value.startswith("No predictions over training saved") for c in app.caption)
    assert not app.get("select_slider")


def test_one_evaluation_shows_its_pictures_without_a_slider(runs_root):
    _training_run(runs_root / "short", steps=(4,))
    app = _page("short")
    assert not app.get("select_slider")
    assert "val 00001: step 4" in _pictures(app)


def test_a_damaged_picture_or_record_is_a_message_not_a_traceback(runs_root):
    run_dir = _training_run(runs_root / "damaged")
    (run_dir / "snapshots" / "step_000004" / "1.png").write_bytes(b"not a png")
    app = _page("damaged")
    warnings = [w.value for w in app.warning]
    assert any("step_000004/1.png" in w and "cannot read" in w for w in warnings), warnings
    assert "val 00000: step 4" in _pictures(app)
    (run_dir / "snapshots" / "images.json").write_text("{")
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("images.json is not readable JSON" in e.value for e in app.error)


def test_a_selftraining_run_picks_its_round_and_training_run_first(runs_root):
    run_dir = runs_root / "st"
    run_dir.mkdir(parents=True)
    config = load_config("configs/selftrain_synthetic_tiny.yaml", [f"run_dir={run_dir}"])
    save_config(config, run_dir / "selftrain.yaml")
    _training_run(run_dir / "round_0", steps=(2,))
    _training_run(run_dir / "round_1" / "student", steps=(3, 5))
    _training_run(run_dir / "round_1" / "finetune", steps=(7,))
    app = _page("st")
    rounds = app.select_slider(key=f"snapshot_round_{run_dir}")
    assert rounds.options == ["0", "1"] and rounds.value == 1
    phase = app.radio(key=f"snapshot_phase_{run_dir}_1")
    assert phase.options == ["student", "fine-tune"] and phase.value == "student"
    assert "val 00000: step 5" in _pictures(app)
    phase.set_value("fine-tune").run()
    _no_failure(app)
    assert "val 00000: step 7" in _pictures(app)
    app.select_slider(key=f"snapshot_round_{run_dir}").set_value(0).run()
    _no_failure(app)
    assert app.radio(key=f"snapshot_phase_{run_dir}_0").options == ["teacher"]
    assert "val 00000: step 2" in _pictures(app)
