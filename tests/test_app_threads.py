"""The apps follow the thread policy (ainnoseg/threads.py): their model work
takes the cores a training job leaves, every core when nothing trains, and
jobs they launch keep them a core. Decisions are checked, not timings."""

import pytest
import torch

from ainnoseg import threads
from ainnoseg.analysis import compare
from ainnoseg.threads import Machine

gr = pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[demo]')")
pytest.importorskip("streamlit", reason="the dashboard needs streamlit: pip install -e .[test]")

import streamlit as st  # noqa: E402
from demo_helpers import load_demo, load_handlers, write_release_set, write_scene  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from ainnoseg.checkpoints.sets import ModelStore  # noqa: E402
from test_dashboard import APP  # noqa: E402


@pytest.fixture(autouse=True)
def three_threads():
    """The process starts each test with 3 threads, a count no plan here gives."""
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def recorded_threads(monkeypatch):
    """The torch thread count every model run of `compare.run_models` saw."""
    seen = []
    run_models = compare.run_models

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return run_models(*args, **kwargs)

    monkeypatch.setattr(compare, "run_models", recording)
    return seen


@pytest.mark.parametrize("machine, expected", [(Machine(cores=2, jobs=1), 1),
                                               (Machine(cores=2), 2)])
def test_the_demo_runs_its_models_on_what_training_leaves(
        tmp_path, monkeypatch, recorded_threads, machine, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_recent_machine", lambda: machine)
    releases = write_release_set(tmp_path / "releases")
    image, _ = write_scene(tmp_path / "scene.png", (64, 80))
    handlers = load_handlers()
    settings = handlers.Settings(store=ModelStore(releases), camvid=None)
    handlers.on_segment(settings, str(image), None, "synthetic", None, False, 0.5, False, True)
    assert recorded_threads == [expected]
    assert torch.get_num_threads() == 3


def test_the_demo_marks_itself_interactive_for_jobs_it_shares_the_machine_with(monkeypatch):
    app = load_demo()
    monkeypatch.setattr(threads, "_INTERACTIVE", False)
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: None)
    app.main(["--releases", "assets/checkpoints"])
    assert threads.is_interactive()


def test_the_dashboard_predicts_on_what_training_leaves_and_marks_itself_interactive(
        tmp_path, monkeypatch):
    monkeypatch.setenv("AINNOSEG_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_INTERACTIVE", False)
    monkeypatch.setattr(threads, "_recent_machine", lambda: Machine(cores=2, jobs=1))
    seen = []
    segment_image = __import__("ainnoseg").segment_image

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return segment_image(*args, **kwargs)

    monkeypatch.setattr("ainnoseg.segment_image", recording)
    st.cache_data.clear()  # a page tested before in this process may hold the prediction
    app = AppTest.from_file(str(APP), default_timeout=240)
    app.run()
    app.switch_page("predictions.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert seen and set(seen) == {1}
    assert threads.is_interactive()
