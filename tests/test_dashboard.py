"""The dashboard's pages under streamlit's AppTest: every page opens without
an exception, a tiny self-training run launched from the Launch page runs to
the end and shows up on the Runs and Rounds pages, and a failing run's error
is on the Runs page."""

import io
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit",
                    reason="the dashboard tests need streamlit: pip install -e .[test]")
from PIL import Image  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from ainnoseg.config import load_config, save_config  # noqa: E402
from ainnoseg.engine.pseudo_label import write_png  # noqa: E402
from ainnoseg.runs import jobs, supervisor  # noqa: E402
from ainnoseg.runs import list_runs, load_run  # noqa: E402

APP = Path(__file__).resolve().parents[1] / "app" / "dashboard.py"
TIMEOUT = 240  # seconds a page may take on a busy 2-core machine


@pytest.fixture
def runs_root(tmp_path, monkeypatch):
    """An empty runs folder for the dashboard; jobs still running there at the
    end (a failed test) are stopped."""
    monkeypatch.setenv("AINNOSEG_RUNS", str(tmp_path / "runs"))
    yield tmp_path / "runs"
    for run in list_runs(tmp_path / "runs"):
        if run.status == "running" and run.job:
            jobs.stop(run.path, timeout=10)


def open_app(page="runs.py"):
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    app.run()
    if page != "runs.py":
        app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def texts(elements):
    return " ".join(str(element.value) for element in elements)


def rerun(app):
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_every_page_opens_on_a_fresh_clone(runs_root):
    app = open_app("runs.py")
    assert "No runs yet" in texts(app.info) and f"`{runs_root}` does not exist" in texts(app.info)
    assert app.dataframe  # the released models
    app.switch_page("launch.py")
    rerun(app)
    assert app.button(key="launch_start") is not None and "synthetic" in texts(app.caption)
    app.switch_page("rounds.py")
    rerun(app)
    assert "No self-training run" in texts(app.info)
    app.switch_page("mosaic.py")
    rerun(app)
    assert [s.value for s in app.subheader][:2] == ["Sample 17", "Sample 18"]
    app.switch_page("predictions.py")
    rerun(app)
    assert not app.error and app.dataframe  # the image's scores
    app.switch_page("inside.py")
    rerun(app)
    assert not app.error and app.get("plotly_chart")
    app.switch_page("label_issues.py")
    rerun(app)
    assert not app.error and app.button(key="issues_go")


def test_predictions_compare_two_checkpoints_and_score_the_worst_images(runs_root):
    app = open_app("predictions.py")
    app.selectbox(key="pred_b").select_index(2)
    app.number_input(key="pred_index").set_value(3)
    rerun(app)
    assert len([frame for frame in app.dataframe]) == 2  # one score row per checkpoint
    app.slider(key="worst_limit").set_value(2)
    rerun(app)
    app.button(key="worst_go").click()
    rerun(app)
    table = app.dataframe[-1].value
    assert len(table) == 2 and "mIoU gain" in table.columns


def test_a_bad_folder_or_upload_gets_a_message_not_a_traceback(runs_root, tmp_path):
    app = open_app("predictions.py")
    app.selectbox(key="pred_data").select("another folder...")
    rerun(app)
    app.text_input(key="pred_data_folder").input(str(tmp_path / "nowhere"))
    rerun(app)
    assert "no dataset folder at" in texts(app.error)
    app.radio(key="pred_source").set_value("upload")
    rerun(app)
    app.file_uploader(key="pred_upload").upload("notes.txt", b"not an image")
    rerun(app)
    assert "notes.txt is not an image" in texts(app.error)
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (90, 90, 90)).save(buffer, "PNG")
    app.file_uploader(key="pred_upload").clear().upload("grey.png", buffer.getvalue())
    rerun(app)
    assert not app.error and len(app.get("image")) == 2  # the image and the legend
    assert len(app.get("plotly_chart")) == 1  # the prediction, naming the class under a hover

    launch = open_app("launch.py")
    launch.selectbox(key="launch_data_selftrain_synthetic_quick").select("another folder...")
    rerun(launch)
    launch.text_input(key="launch_data_selftrain_synthetic_quick_folder").input(str(tmp_path))
    rerun(launch)
    assert "holds no readable split" in texts(launch.error)
    assert launch.button(key="launch_start").disabled


def test_a_tiny_selftraining_run_launched_from_the_page_runs_to_the_end(runs_root):
    app = open_app("launch.py")
    app.selectbox(key="launch_preset_selftrain").select("selftrain_synthetic_tiny")
    rerun(app)
    app.text_input(key="launch_name_selftrain_synthetic_tiny").input("tiny")
    app.number_input(key="launch_it_selftrain_synthetic_tiny").set_value(3)
    rerun(app)
    app.button(key="launch_start").click()
    rerun(app)
    assert "Started" in texts(app.success), texts(app.error)
    app.button(key="launch_start").click()  # the same run directory again, while it works
    rerun(app)
    assert "is in use by job pid" in texts(app.error)

    run_dir = runs_root / "tiny"
    jobs.wait(run_dir, timeout=TIMEOUT)
    assert load_run(run_dir).status == "finished", load_run(run_dir).log_tail
    rerun(app)
    assert "tiny finished" in texts(app.success)
    assert load_run(run_dir).config["iterations"] == 3  # the form's value

    app.switch_page("runs.py")
    rerun(app)
    table = app.dataframe[0].value
    assert table.loc[0, "run"] == "tiny" and table.loc[0, "status"] == "finished"
    # each round's training runs saved their predictions over training
    assert app.select_slider(key=f"snapshot_round_{run_dir}").options == ["0", "1"]
    captions = [caption for image in app.get("image") for caption in image.captions]
    assert "val 00000: step 2" in captions, captions  # round 1's student, 2 iterations
    app.switch_page("rounds.py")
    rerun(app)
    assert app.dataframe[0].value["round"].tolist() == [0, 1]
    assert "Pseudo-label browser" in texts(app.subheader)


def test_a_failing_run_shows_its_error_on_the_runs_page(runs_root, tmp_path):
    run_dir = runs_root / "broken"
    jobs.launch("train", "configs/synthetic_tiny.yaml", [f"data={tmp_path / 'nothing'}"],
                run_dir=run_dir)
    jobs.wait(run_dir, timeout=TIMEOUT)
    deadline = time.monotonic() + 10
    while load_run(run_dir).status != "failed" and time.monotonic() < deadline:
        time.sleep(0.2)
    app = open_app("runs.py")
    assert app.dataframe[0].value.loc[0, "status"] == "failed"
    message = texts(app.error)
    assert "broken failed" in message and "no dataset folder at" in message


def test_a_job_started_from_the_page_stops_with_its_stop_button(runs_root):
    app = open_app("launch.py")
    app.radio(key="launch_kind").set_value("train")
    rerun(app)
    app.button(key="launch_start").click()  # synthetic_quick: minutes of training
    rerun(app)
    run_dir = runs_root / "synthetic_quick"
    assert "Started" in texts(app.success) and load_run(run_dir).status == "running"
    app.button(key=f"stop_{run_dir}").click()
    rerun(app)
    run = load_run(run_dir)
    assert run.status == "stopped" and run.status_reason == "stopped by ainnoseg.runs.jobs.stop"


def test_the_control_is_launched_from_the_page_and_its_rounds_page_says_what_it_is(runs_root):
    app = open_app("launch.py")
    app.selectbox(key="launch_preset_selftrain").select("selftrain_synthetic_tiny")
    rerun(app)
    app.text_input(key="launch_name_selftrain_synthetic_tiny").input("control")
    app.radio(key="launch_students_selftrain_synthetic_tiny").set_value("labelled")
    rerun(app)
    app.button(key="launch_start").click()
    rerun(app)
    run_dir = runs_root / "control"
    assert "Started" in texts(app.success), texts(app.error)
    assert 'student_data="labelled"' in load_run(run_dir).job["command"]
    if load_run(run_dir).status == "running":
        jobs.stop(run_dir, timeout=30)

    save_config(load_config("configs/selftrain_synthetic_tiny.yaml",
                            ["student_data=labelled", f"run_dir={run_dir}"]),
                run_dir / "selftrain.yaml")
    rounds = open_app("rounds.py")
    assert "the control: its students train on the labelled data" in texts(rounds.caption)
    assert "writes no pseudo-labels" in texts(rounds.caption)


def test_a_selftraining_run_whose_data_moved_gets_a_message(runs_root, tmp_path):
    run_dir = runs_root / "moved"
    run_dir.mkdir(parents=True)
    gone = tmp_path / "gone"
    save_config(load_config("configs/selftrain_synthetic_tiny.yaml",
                            [f"data={gone}", f"unlabeled={gone}"]), run_dir / "selftrain.yaml")
    write_png(np.zeros((8, 8), np.uint8), run_dir / "round_1" / "pseudo" / "00000.png")
    app = open_app("rounds.py")
    assert f"cannot be read here: no dataset folder at {gone}" in texts(app.error)


def test_a_stopped_run_resumes_from_the_launch_page_and_a_new_run_gets_a_fresh_name(runs_root):
    run_dir = runs_root / "synthetic_quick"  # where the page's default preset would go
    jobs.launch("train", "configs/synthetic_tiny.yaml",
                ["iterations=100000", "checkpoint_every=1", "eval_every=100000"], run_dir=run_dir)
    deadline = time.monotonic() + TIMEOUT
    while not (run_dir / "last.pt").is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    jobs.stop(run_dir, timeout=10)
    app = open_app("launch.py")
    app.radio(key="launch_kind").set_value("train")
    rerun(app)
    name = app.text_input(key="launch_name_synthetic_quick")
    assert name.value == "synthetic_quick_2"  # the preset's name is taken
    name.input("synthetic_quick")
    rerun(app)
    app.button(key="launch_start").click()
    rerun(app)
    message = texts(app.error)
    assert "already holds a run" in message and "Resume button" in message
    assert "launch(" not in message and "resume=True" not in message  # no Python on the page
    assert "synthetic_quick**: stopped" in texts(app.markdown)
    app.button(key=f"resume_{run_dir}").click()
    rerun(app)
    assert "Resumed synthetic_quick" in texts(app.success), texts(app.error)
    record = supervisor.read_record(run_dir)
    assert record["resume"] and record["command"][-2:] == ["--resume", str(run_dir)]


def test_a_runs_folder_of_slash_opens_and_a_folder_that_holds_no_run_is_refused(
        runs_root, monkeypatch):
    monkeypatch.setenv("AINNOSEG_RUNS", "/")
    open_app("runs.py")  # no exception: folders it may not read (/proc/1/cwd) are skipped
    open_app("launch.py")
    monkeypatch.setenv("AINNOSEG_RUNS", str(runs_root))
    (runs_root / "etc").mkdir(parents=True)
    (runs_root / "etc" / "passwd").write_text("root:x:0:0\n")
    app = open_app("launch.py")
    app.radio(key="launch_kind").set_value("train")
    rerun(app)
    app.text_input(key="launch_name_synthetic_quick").input("etc")
    rerun(app)
    app.button(key="launch_start").click()
    rerun(app)
    assert "holds no run" in texts(app.error) and "choose another run name" in texts(app.error)
    assert not app.success
    assert [path.name for path in (runs_root / "etc").iterdir()] == ["passwd"]
