"""Launch: a training or self-training run as a background job, its live progress, Stop."""

import streamlit as st
import widgets

import ainnoseg
from ainnoseg import jobs, launching, run_tables
from ainnoseg.config import ConfigError
from ainnoseg.data import DataError
from ainnoseg.data.check import check_dataset
from ainnoseg.runs import list_runs

st.title("Launch")
root = widgets.runs_root()
kind = st.radio("Run", ["selftrain", "train"], horizontal=True, key="launch_kind",
                format_func=lambda k: {"selftrain": "self-training (teacher/student rounds)",
                                       "train": "training"}[k])
presets = {p["name"]: p for p in launching.list_presets() if p["kind"] == kind}
if not presets:
    st.error(f"No {kind} preset found in {launching.CONFIGS_DIR}.")
    st.stop()
names = list(presets)
default = "selftrain_synthetic_quick" if kind == "selftrain" else "synthetic_quick"
preset = presets[st.selectbox("Preset", names, key=f"launch_preset_{kind}",
                              index=names.index(default) if default in names else 0)]
values, name = preset["values"], preset["name"]
st.caption(preset["about"])


@st.cache_data(max_entries=8, show_spinner=False)
def full_check(folder, modified):
    return check_dataset(folder)


data = widgets.dataset_picker(f"launch_data_{name}", default=values.get("data"))
report = launching.describe_data(data) if data else {"error": "type a dataset folder"}
if report["error"]:
    st.error(report["error"])
else:
    st.caption(f"{report['layout']}: " + ", ".join(
        f"{split} {count} images" + ("" if report["labelled"][split] else " (no labels)")
        for split, count in report["splits"].items()))
    if data != widgets.SYNTHETIC and st.button("Check every file", key="launch_check"):
        with st.spinner(f"Reading every file of {data} ..."):
            checked = full_check(data, widgets.stamp(data))
        problems = [{"split": split, "file": file, "problem": message}
                    for split, result in checked["splits"].items()
                    for file, message in result["problems"]]
        (st.dataframe(problems, hide_index=True) if problems
         else st.success("Every file reads, every mask matches its image."))

models = ainnoseg.list_models()
left, right = st.columns(2)
model = left.selectbox("Model", models, key=f"launch_model_{name}",
                       index=models.index(values.get("model", "ainnoseg_w18s")))
iterations = right.number_input("Iterations (teacher / training)", 1, 1_000_000,
                                int(values.get("iterations", 1000)), key=f"launch_it_{name}")
rounds = threshold = student = finetune = None
if kind == "selftrain":
    cols = st.columns(4)
    rounds = cols[0].number_input("Rounds", 1, 10, int(values.get("rounds", 2)),
                                  key=f"launch_rounds_{name}")
    threshold = cols[1].slider("Confidence threshold", 0.0, 0.99,
                               float(values.get("threshold", 0.0)), key=f"launch_thr_{name}")
    student = cols[2].number_input("Student iterations", 0, 1_000_000,
                                   int(values.get("student_iterations", 0)),
                                   key=f"launch_student_{name}", help="0: as many as the teacher")
    finetune = cols[3].number_input("Fine-tune iterations", 0, 1_000_000,
                                    int(values.get("finetune_iterations", 0)),
                                    key=f"launch_ft_{name}", help="0: as many as the teacher")
run_name = st.text_input("Run name (a folder in the runs folder)", name, key=f"launch_name_{name}")
extra = st.text_area("More settings (key=value, one a line)", key="launch_extra",
                     placeholder="lr=0.02\nbatch_size=4")

if st.button("Start", type="primary", key="launch_start", disabled=bool(report["error"])):
    try:
        overrides = launching.launch_overrides(
            data=data, model=model, iterations=iterations, rounds=rounds, threshold=threshold,
            unlabeled=data if kind == "selftrain" else None, student_iterations=student,
            finetune_iterations=finetune, extra=launching.parse_extra(extra))
        run_dir = launching.run_dir(root, run_name)
        jobs.launch(kind, preset["path"], overrides, run_dir=run_dir)
    except (jobs.JobError, ConfigError, DataError, ValueError) as error:
        st.error(str(error))
    else:
        st.session_state["launched"] = str(run_dir)
        st.success(f"Started {run_dir}: it runs in the background, a reload or a closed tab "
                   "does not stop it.")


@st.fragment(run_every=2)
def progress():
    launched = st.session_state.get("launched")
    shown = [run for run in list_runs(root) if run.status == "running" or run.path == launched]
    if not shown:
        st.caption("No job is running.")
    for run in shown:
        st.markdown(f"**{run.name}**: {run.status}"
                    + (f", {run_tables.format_seconds(run.eta_s)} to go" if run.eta_s else ""))
        done = run.step / run.total if run.step is not None and run.total else 0.0
        if run.status == "running":
            st.progress(min(done, 1.0), text=run_tables.position(run) or "starting ...")
        elif run.status == "finished":
            st.success(f"{run.name} finished: its results are on the Runs and Rounds pages.")
        elif run.status == "failed":
            st.error(run.error)
        if run.status == "running" and st.button("Stop", key=f"stop_{run.path}"):
            try:
                jobs.stop(run.path)
            except jobs.JobError as error:
                st.error(str(error))


st.subheader("Jobs")
progress()
