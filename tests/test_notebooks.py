"""Every tutorial in notebooks/ runs from its first cell to its last at CI
sizes, and is stored without outputs. What the run shows is what a reader
sees: no output of hundreds of lines, no warnings, and every figure drawn in
a widget also drawn as a plain figure (a page without a kernel, e.g. on
GitHub, shows no widgets).

Each notebook's first code cell (tagged "parameters") holds its sizes and
budgets; the test adds a cell after it with the small values below, so the
notebook's own code runs unchanged, only smaller. That the notebooks use only
the library's public names is tests/test_public_api.py's to check.
"""

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))


def ci_parameters(name, tmp_path):
    """The CI-sized values of each notebook's parameters."""
    small = {"IMAGE_SIZE": (64, 96)}
    return {
        "01_quick_start": {**small, "NUM_IMAGES": 2, "USE_CAMVID": False},
        "02_inside_the_network": {**small, "QUERY_CLASSES": ["road", "car"],
                                  "ATTENTION_SCENES": 2, "USE_CAMVID": False},
        "03_augmentation": {"CROP_SIZE": (64, 80), "SCALE": (64, 96), "SAMPLES": 3},
        "04_teacher_and_student": {"PRESET": "selftrain_synthetic_tiny", "OVERRIDES": [],
                                   "RUN_DIR": str(tmp_path / "selftrain"), "TIMEOUT_S": 300},
        "05_boundaries_and_small_objects": {**small, "NUM_IMAGES": 2, "SHOW": 1,
                                            "USE_CAMVID": False},
        "06_your_own_data": {"DATA": str(tmp_path / "my_data"), "TRAIN_IMAGES": 2,
                             "VAL_IMAGES": 1, "IMAGE_SIZE": (64, 80), "PRESET": "synthetic_tiny",
                             "OVERRIDES": [], "RUN_DIR": str(tmp_path / "my_model"),
                             "EXPORT": str(tmp_path / "my_model.pt"), "TIMEOUT_S": 300},
    }[name]


def parameters_cell(notebook):
    cell = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert "parameters" in cell.metadata.get("tags", []), "the first code cell holds the parameters"
    return cell


def assigned_names(source):
    names = set()
    for line in source.splitlines():
        match = re.match(r"^([A-Z_][A-Z0-9_]*(?:\s*,\s*[A-Z_][A-Z0-9_]*)*)\s*=", line)
        if match:
            names.update(name.strip() for name in match.group(1).split(","))
    return names


def test_every_notebook_has_ci_parameters(tmp_path):
    assert [path.stem for path in PATHS] == [
        "01_quick_start", "02_inside_the_network", "03_augmentation",
        "04_teacher_and_student", "05_boundaries_and_small_objects", "06_your_own_data"]
    for path in PATHS:
        names = assigned_names(parameters_cell(nbformat.read(path, as_version=4)).source)
        unknown = set(ci_parameters(path.stem, tmp_path)) - names
        assert not unknown, f"{path.name} has no parameters {sorted(unknown)}"


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_notebook_is_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name} is stored with outputs: clear them before committing")


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    # Importing streamlit (the dashboard tests do) sets MPLBACKEND=Agg for the
    # process; the kernel would inherit it and draw no figure at all.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    notebook = nbformat.read(path, as_version=4)
    cell = parameters_cell(notebook)
    values = ci_parameters(path.stem, tmp_path)
    source = "# CI sizes\n" + "\n".join(f"{name} = {value!r}" for name, value in values.items())
    notebook.cells.insert(notebook.cells.index(cell) + 1, nbformat.v4.new_code_cell(source))
    for attempt in (1, 2):
        client = nbclient.NotebookClient(
            nbformat.from_dict(notebook), timeout=600, timeout_func=cell_timeout,
            kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}})
        try:
            client.execute()  # raises CellExecutionError, with the cell and its traceback
            check_outputs(path.name, client.nb)
            return
        except nbclient.exceptions.CellTimeoutError:
            # nbclient sometimes misses the reply to a cell that opens widgets and
            # waits out the timeout (jupyter/nbclient#312): run it again once.
            if attempt == 2 or not _stalled_on_widgets(client):
                raise


MAX_OUTPUT_LINES = 60  # a table or a report; a long dump belongs in a short repr


def output_text(output):
    if output.output_type == "stream":
        return output.text
    return output.get("data", {}).get("text/plain", "")


def draws_a_figure(cell):
    return any("image/png" in output.get("data", {}) for output in cell.outputs)


def check_outputs(name, notebook):
    """What a reader of the executed notebook sees."""
    previous = None  # the code cell before this one
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        where = f"{name}, cell {index} ({cell.source.splitlines()[0] if cell.source else ''!r})"
        for output in cell.outputs:
            text = output_text(output)
            assert len(text.splitlines()) <= MAX_OUTPUT_LINES, (
                f"{where} prints {len(text.splitlines())} lines: {text[:300]}")
            if output.output_type == "stream" and output.name == "stderr":
                assert "Warning" not in text, f"{where} warns: {text[:500]}"
        # The plain figure is drawn by the widget's cell or the one before it.
        if "ipywidgets.interact" in cell.source:
            assert draws_a_figure(cell) or (previous is not None and draws_a_figure(previous)), (
                f"{where} draws its figure only inside a widget: draw it once as a plain "
                "figure too, in the cell before")
        previous = cell


WIDGET_CELL_TIMEOUT_S = 30  # such a cell takes about a second at CI sizes


def cell_timeout(cell):
    return WIDGET_CELL_TIMEOUT_S if "ipywidgets.interact" in cell.source else 600


def _stalled_on_widgets(client):
    """Whether the cell that timed out opens widgets: the last one with an
    execution count, as nbclient numbers a cell when it starts it."""
    started = [cell for cell in client.nb.cells
               if cell.cell_type == "code" and cell.get("execution_count")]
    return bool(started) and "ipywidgets.interact" in started[-1].source
