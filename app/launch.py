"""Launch: a training or self-training run as a background job, its live
progress, Stop, and Resume for a run that stopped or failed."""

import streamlit as st

import ainnoseg
from ainnoseg import ConfigError, DataError, JobError
from ainnoseg.data.check import check_dataset
from ainnoseg.files import stamp
from ainnoseg.runs import jobs, launching, list_runs
from ainnoseg.runs import tables as run_tables

import widgets

KINDS = {"selftrain": "self-training (teacher/student rounds)", "train": "training"}
DEFAULT_PRESETS = {"selftrain": "selftrain_synthetic_quick", "train": "synthetic_quick"}
STUDENT_DATA = {"pseudo": "pseudo-labels (self-training)",
                "labelled": "labelled data (the budget-matched control)"}


@st.cache_data(max_entries=8, show_spinner=False)
def full_check(folder, modified):
    return check_dataset(folder)


def choose_preset():
    kind = st.radio("Run", list(KINDS), horizontal=True, key="launch_kind",
                    format_func=KINDS.get)
    presets = {p["name"]: p for p in launching.list_presets() if p["kind"] == kind}
    if not presets:
        st.error(f"No {kind} preset found in {launching.CONFIGS_DIR}.")
        st.stop()
    names = list(presets)
    default = DEFAULT_PRESETS[kind]
    name = st.selectbox("Preset", names, key=f"launch_preset_{kind}",
                        index=names.index(default) if default in names else 0)
    st.caption(presets[name]["about"])
    return kind, presets[name]


def choose_data(preset):
    """The dataset, described; a folder's files are all read on request."""
    data = widgets.dataset_picker(f"launch_data_{preset['name']}",
                                  default=preset["values"].get("data"))
    report = launching.describe_data(data) if data else {"error": "type a dataset folder"}
    if report["error"]:
        st.error(report["error"])
        return data, False
    st.caption(f"{report['layout']}: " + ", ".join(
        f"{split} {count} images" + ("" if report["labelled"][split] else " (no labels)")
        for split, count in report["splits"].items()))
    if data != widgets.SYNTHETIC and st.button("Check every file", key="launch_check"):
        with st.spinner(f"Reading every file of {data} ..."):
            checked = full_check(data, stamp(data))
        problems = [{"split": split, "file": file, "problem": message}
                    for split, result in checked["splits"].items()
                    for file, message in result["problems"]]
        if problems:
            st.dataframe(problems, hide_index=True)
        else:
            st.success("Every file reads and every mask matches its image.")
    return data, True


def choose_settings(kind, preset):
    """The form's values for `launching.launch_overrides`, besides the data."""
    values, name = preset["values"], preset["name"]
    models = ainnoseg.list_models()
    left, right = st.columns(2)
    chosen = {
        "model": left.selectbox("Model", models, key=f"launch_model_{name}",
                                index=models.index(values.get("model", "ainnoseg_w18s"))),
        "iterations": right.number_input("Iterations (teacher / training)", 1, 1_000_000,
                                         int(values.get("iterations", 1000)),
                                         key=f"launch_it_{name}"),
    }
    if kind == "selftrain":
        cols = st.columns(4)
        chosen["rounds"] = cols[0].number_input("Rounds", 1, 10, int(values.get("rounds", 2)),
                                                key=f"launch_rounds_{name}")
        chosen["threshold"] = cols[1].slider("Confidence threshold", 0.0, 0.99,
                                             float(values.get("threshold", 0.0)),
                                             key=f"launch_thr_{name}")
        for column, key, label in ((cols[2], "student_iterations", "Student iterations"),
                                   (cols[3], "finetune_iterations", "Fine-tune iterations")):
            chosen[key] = column.number_input(label, 0, 1_000_000, int(values.get(key, 0)),
                                              key=f"launch_{key}_{name}",
                                              help="0: as many as the teacher")
        chosen["student_data"] = st.radio(
            "Students train on", list(STUDENT_DATA), horizontal=True,
            index=list(STUDENT_DATA).index(values.get("student_data", "pseudo")),
            format_func=STUDENT_DATA.get, key=f"launch_students_{name}",
            help="The control trains each round's student on the labelled data instead, "
                 "with the same iterations: run it beside self-training to see what the "
                 "pseudo-labels bought beyond the extra training.")
    return chosen


def page_message(error):
    """An error in this page's words: a JobError's page form, else its message."""
    return getattr(error, "page", None) or str(error)


def start(kind, preset, data, settings, run_name, extra):
    try:
        overrides = launching.launch_overrides(
            data=data, unlabeled=data if kind == "selftrain" else None,
            extra=launching.parse_extra(extra), **settings)
        run_dir = launching.run_dir(widgets.runs_root(), run_name)
        jobs.launch(kind, preset["path"], overrides, run_dir=run_dir)
    except (JobError, ConfigError, DataError, ValueError) as error:
        st.error(page_message(error))
        return
    st.session_state["launched"] = str(run_dir)
    st.success(f"Started {run_dir}: it runs in the background; a reload or a closed tab does "
               "not stop it.")


def resume(run):
    try:
        jobs.launch(run.kind, run_dir=run.path, resume=True)
    except (JobError, ConfigError, DataError, ValueError) as error:
        st.error(page_message(error))
        return
    st.session_state["launched"] = run.path
    st.success(f"Resumed {run.name} where it stopped: it runs in the background.")


def show_job(run):
    """One run of the Jobs panel: progress and Stop while it runs, its end
    after, Resume where it stopped or failed with something to resume."""
    eta = f", {run_tables.format_seconds(run.eta_s)} to go" if run.eta_s else ""
    st.markdown(f"**{run.name}**: {run.status}{eta}")
    if run.status == "running":
        done = run.step / run.total if run.step is not None and run.total else 0.0
        st.progress(min(done, 1.0), text=run_tables.position(run) or "starting ...")
        if st.button("Stop", key=f"stop_{run.path}"):
            try:
                jobs.stop(run.path)
            except JobError as error:
                st.error(page_message(error))
    elif run.status == "finished":
        st.success(f"{run.name} finished: its results are on the Runs and Rounds pages.")
    elif run.status == "failed":
        st.error(run.error)
    elif run.status_reason:
        st.caption(run.status_reason)
    if run.status in ("stopped", "failed") and jobs.resumable(run.path, run.kind):
        if st.button("Resume", key=f"resume_{run.path}"):
            resume(run)


@st.fragment(run_every=2)
def progress():
    """The running, stopped and failed jobs (and the one this tab launched),
    from their run directories."""
    launched = st.session_state.get("launched")
    shown = [run for run in list_runs(widgets.runs_root())
             if run.status in ("running", "stopped", "failed") or run.path == launched]
    if not shown:
        st.caption("No job is running.")
    for run in shown:
        show_job(run)


st.title("Launch")
form, panel = st.columns([3, 2], gap="large")
with form:
    kind, preset = choose_preset()
    data, data_ok = choose_data(preset)
    settings = choose_settings(kind, preset)
    run_name = st.text_input("Run name (a folder in the runs folder)",
                             launching.fresh_run_name(widgets.runs_root(), preset["name"]),
                             key=f"launch_name_{preset['name']}")
    extra = st.text_area("More settings (key=value, one a line)", key="launch_extra",
                         placeholder="e.g. lr=0.02")
    if st.button("Start", type="primary", key="launch_start", disabled=not data_ok):
        start(kind, preset, data, settings, run_name, extra)
with panel:
    st.subheader("Jobs")
    st.caption("Read from the run directories every 2 s: a reload or another tab finds the "
               "same jobs.")
    progress()
