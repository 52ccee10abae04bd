"""The Rounds and Runs pages: the Rounds page reads the teacher's confidence
the pseudo-labelling stored instead of running the teacher again (its first
load was a model run), and leaves blank what a round lacks; the Runs page
draws val curves in % as its table shows them."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit",
                    reason="the dashboard tests need streamlit: pip install -e .[test]")
from streamlit.testing.v1 import AppTest  # noqa: E402

from ainnoseg.config import load_config, save_config  # noqa: E402
from ainnoseg.data.synthetic import CLASS_NAMES  # noqa: E402
from ainnoseg.engine.pseudo_label import write_png  # noqa: E402
from ainnoseg.files import write_json  # noqa: E402

APP = Path(__file__).resolve().parents[1] / "app" / "dashboard.py"


@pytest.fixture
def runs_root(tmp_path, monkeypatch):
    """A runs folder holding one round of a self-training run whose teacher
    checkpoint is not a checkpoint: any attempt to load it shows an error."""
    root = tmp_path / "runs"
    run = root / "st"
    config = load_config("configs/selftrain_synthetic_tiny.yaml", [f"run_dir={run}"])
    run.mkdir(parents=True)
    save_config(config, run / "selftrain.yaml")
    (run / "round_0").mkdir()
    (run / "round_0" / "last.pt").write_bytes(b"not a checkpoint")
    shape = (64, 80)
    write_png(np.zeros(shape, np.uint8), run / "round_1" / "pseudo" / "00000.png")
    write_png(np.full(shape, 200, np.uint8), run / "round_1" / "confidence" / "00000.png")
    write_json(run / "round_1" / "pseudo_stats.json", {
        "teacher": str(run / "round_0" / "last.pt"), "threshold": 0.5, "scales": [1.0],
        "flip": False, "images": 1, "kept_share": 1.0, "agreement": None, "mean_iou": None,
        "class_pixels": {name: 0 for name in CLASS_NAMES},
        "class_share": {name: 0.0 for name in CLASS_NAMES}})
    monkeypatch.setenv("AINNOSEG_RUNS", str(root))
    return root


def test_the_rounds_page_shows_the_stored_confidence_without_loading_the_teacher(runs_root):
    app = AppTest.from_file(str(APP), default_timeout=240)
    app.run()
    app.switch_page("rounds.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    captions = [caption for image in app.get("image") for caption in image.captions]
    assert any(caption.startswith("confidence of") for caption in captions), captions


def test_the_round_table_leaves_what_a_round_lacks_blank_not_none(runs_root):
    app = AppTest.from_file(str(APP), default_timeout=240)
    app.run()
    app.switch_page("rounds.py").run()
    table = app.dataframe[0]
    assert table.value["agreement"].isna().all()  # round 1 has no earlier pseudo-labels
    assert table.proto.placeholder == "-"


def test_the_runs_page_draws_val_curves_in_percent_as_its_table(runs_root):
    run = runs_root / "trained"
    config = load_config("configs/synthetic_tiny.yaml", [f"run_dir={run}"])
    run.mkdir()
    save_config(config, run / "config.yaml")
    records = [{"step": 2, "loss": 1.5}, {"step": 4, "loss": 1.2, "val.mean_iou": 0.42}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    app = AppTest.from_file(str(APP), default_timeout=240)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    loss, val = (json.loads(chart.proto.spec) for chart in app.get("vega_lite_chart"))
    assert val["encoding"]["y"]["axis"]["format"] == "%"
    assert {"field": "value", "type": "quantitative", "format": ".1%"} in \
        val["encoding"]["tooltip"]
    assert loss["encoding"]["y"]["axis"]["format"] == "~g"
    assert app.dataframe[0].proto.placeholder == "-"


def test_the_runs_page_diffs_two_configs_and_deletes_a_run_once_confirmed(runs_root):
    for name, lr in (("first", 0.01), ("second", 0.02)):
        run = runs_root / name
        run.mkdir()
        save_config(load_config("configs/synthetic_tiny.yaml", [f"run_dir={run}", f"lr={lr}"]),
                    run / "config.yaml")
    app = AppTest.from_file(str(APP), default_timeout=240)
    app.run()
    app.selectbox(key="runs_one").select("first").run()
    app.selectbox(key="runs_diff").select("second").run()
    differences = app.dataframe[-1].value
    assert set(differences["key"]) == {"lr", "run_dir"}
    assert "A = first, B = second: the keys whose values differ." in [c.value for c in app.caption]
    delete = app.button(key=f"delete_{runs_root / 'first'}")
    assert delete.disabled  # until confirmed
    app.checkbox(key=f"delete_sure_{runs_root / 'first'}").check().run()
    app.button(key=f"delete_{runs_root / 'first'}").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert not (runs_root / "first").exists() and (runs_root / "second").is_dir()


def _round_metrics(run, round_index, mean_iou):
    write_json(run / f"round_{round_index}" / "metrics.json", {
        "mean_iou": mean_iou, "pixel_accuracy": 0.9, "score": 0.8, "boundary_iou": mean_iou - 0.1,
        "class_iou": {name: mean_iou for name in CLASS_NAMES}})


def _control_run(root, name, **overrides):
    run = root / name
    values = [f"{key}={value}" for key, value in overrides.items()]
    config = load_config("configs/selftrain_synthetic_tiny.yaml",
                         [f"run_dir={run}", "student_data=labelled", *values])
    run.mkdir()
    save_config(config, run / "selftrain.yaml")
    return run


def test_the_rounds_page_sets_a_run_beside_its_control_and_explains_a_run_that_is_not_one(
        runs_root):
    run = runs_root / "st"
    _round_metrics(run, 0, 0.50)
    _round_metrics(run, 1, 0.56)
    control = _control_run(runs_root, "control")
    _round_metrics(control, 0, 0.50)
    _round_metrics(control, 1, 0.53)
    _control_run(runs_root, "longer", rounds=3)
    app = AppTest.from_file(str(APP), default_timeout=240)
    app.run()
    app.switch_page("rounds.py").run()
    app.selectbox(key="rounds_run").select("st").run()
    app.selectbox(key="rounds_control").select("control").run()
    assert not app.exception, [e.value for e in app.exception]
    against = app.dataframe[1].value
    assert list(against["round"]) == [0, 1]
    assert list(against["difference"].round(4)) == [0.0, 0.03]
    assert list(against["control mIoU"]) == [0.50, 0.53]
    app.selectbox(key="rounds_control").select("longer").run()
    assert not app.exception, [e.value for e in app.exception]
    assert "not" in app.warning[0].value and "budget-matched control" in app.warning[0].value
