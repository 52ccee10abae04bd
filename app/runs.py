"""Runs: every run under the runs folder, their curves, and one run in detail:
its commands, config (and how it differs from another run's), log, its
predictions over training time, and deleting it."""

import os
import shlex

import altair as alt
import streamlit as st
import yaml

import ainnoseg
from ainnoseg.runs import jobs, list_runs, snapshots
from ainnoseg.runs import tables as run_tables

import widgets

NO_SNAPSHOTS = ("No predictions over training saved: the run was trained before they were "
                "kept, or with snapshot_images=0, or has not evaluated yet.")

st.title("Runs")
root = widgets.runs_root()
runs = list_runs(root)
running = any(run.status == "running" for run in runs)


@st.fragment(run_every=3 if running else None)
def table():
    rows = run_tables.runs_table(list_runs(root))
    st.dataframe(rows, hide_index=True, column_config=widgets.percent_columns(rows),
                 key="runs_table", placeholder="-")  # e.g. no rounds in a training run


if runs:
    table()
elif not os.path.isdir(root):  # False, not an error, for an unreadable path
    st.info(f"No runs yet: the runs folder `{root}` does not exist (the first run makes it). "
            "Start one on the Launch page, or run `ainnoseg train "
            "configs/synthetic_quick.yaml`; if you expected runs there, check the runs folder "
            "in the sidebar.")
else:
    st.info(f"No runs under `{root}` yet: start one on the Launch page, or run "
            "`ainnoseg train configs/synthetic_quick.yaml`.")

with st.expander("Released models", expanded=not runs):
    st.dataframe(run_tables.released_table(ainnoseg.list_released()), hide_index=True)
if not runs:
    st.stop()

st.subheader("Curves")
names = [run.name for run in runs]
shown = st.multiselect("Runs to overlay", names, default=names[:3], key="runs_curves")
picked = [run for run in runs if run.name in shown]
metric = st.selectbox("Val metric", ["mean_iou", "boundary_iou", "pixel_accuracy", "score"],
                      key="runs_metric")
loss_col, val_col = st.columns(2)
for column, (table_name, key, title) in zip(
        (loss_col, val_col), (("loss", "loss", "training loss"), ("val", metric, f"val {metric}"))):
    rows = run_tables.curve_rows(picked, table_name, key)
    if not rows:
        column.caption(f"No {title} recorded yet.")
        continue
    # Loss: one line per phase; val: one line per run, through its evaluations,
    # in % like the runs table above.
    parts = {"detail": "part:N"} if table_name == "loss" else {}
    axis_format, tip_format = ("~g", ".3f") if table_name == "loss" else ("%", ".1%")
    chart = alt.Chart(alt.Data(values=rows)).mark_line(point=table_name == "val").encode(
        x=alt.X("run step:Q", title="step", axis=alt.Axis(format="d", tickMinStep=1)),
        y=alt.Y("value:Q", title=title, axis=alt.Axis(format=axis_format)),
        color=alt.Color("run:N"),
        tooltip=["run:N", "part:N", "step:Q", alt.Tooltip("value:Q", format=tip_format)], **parts)
    column.altair_chart(chart, width="stretch")

st.subheader("One run")
run = runs[names.index(st.selectbox("Run", names, key="runs_one"))]
if run.status == "failed":
    st.error(f"**{run.name} failed**: {run.error}")
elif run.error:
    st.warning(run.error)
st.markdown(f"**{run.status}**" + (f": {run.status_reason}" if run.status_reason else ""))
st.caption("Reproduce it from its saved config, in a new run directory (paste anywhere):")
st.code(run.command_line, language="bash")
if run.resume_command:
    st.caption("Continue it where it stopped, in its own run directory:")
    st.code(shlex.join(run.resume_command), language="bash")
config_col, log_col = st.columns(2)
config_col.caption("config")
config_col.code(yaml.safe_dump(run.config, sort_keys=False), language="yaml")
log_col.caption("log (last lines of job.log)")
log_col.code("\n".join(run.log_tail) or "(no job log: not started from the dashboard)")


@st.fragment(run_every=3 if run.status == "running" else None)
def predictions_over_training(run):
    """Sliders over the evaluations (and a self-training run's rounds) that
    saved predictions, and the chosen val images' pictures at the one picked."""
    folder = run.path
    if run.kind == "selftrain":
        found = snapshots.snapshot_runs(run.path)
        if not found:
            st.caption(NO_SNAPSHOTS)
            return
        rounds = list(found)
        index = rounds[0] if len(rounds) == 1 else st.select_slider(
            "Round (0: the teacher)", rounds, value=rounds[-1], key=f"snapshot_round_{run.path}")
        phase = st.radio("Training run of the round", list(found[index]), horizontal=True,
                         key=f"snapshot_phase_{run.path}_{index}")
        folder = found[index][phase]
    steps = snapshots.saved_steps(folder)
    if not steps:
        st.caption(NO_SNAPSHOTS)
        return
    step = steps[0] if len(steps) == 1 else st.select_slider(
        "Step", steps, value=steps[-1], key=f"snapshot_step_{folder}")
    try:
        record, rows = snapshots.read_record(folder), snapshots.snapshot(folder, step)
    except ValueError as error:
        st.error(f"The predictions of {run.name} cannot be read: {error}")
        return
    st.caption(f"Step {step} of {', '.join(map(str, steps))}: {len(rows)} images of the "
               f"{record['split']} split, chosen once for the run. Each row: the image, its "
               "ground truth, and the prediction at that step (one scale).")
    for number, row in enumerate(rows):
        columns = st.columns(4)
        show_snapshot(row, step, columns[:3])
        if number == 0:
            widgets.show_legend(record["class_names"], record["palette"], columns[3])


def show_snapshot(row, step, columns):
    if row["problem"]:
        columns[0].warning(row["problem"])
    pictures = (("image", row["name"]), ("truth", f"{row['name']}: ground truth"),
                ("prediction", f"{row['name']}: step {step}"))
    for column, (key, caption) in zip(columns, pictures):
        if row[key] is not None:
            column.image(row[key], caption=caption, width="stretch")


st.subheader("Predictions over training")
predictions_over_training(run)

others = [other for other in names if other != run.name]
if others:
    other = runs[names.index(st.selectbox("Compare its config with", others, key="runs_diff"))]
    differences = run_tables.config_diff(run, other)
    st.caption(f"A = {run.name}, B = {other.name}: " +
               ("the keys whose values differ." if differences else "the same config."))
    if differences:
        st.dataframe([{key: str(value) for key, value in row.items()} for row in differences],
                     hide_index=True)

with st.expander(f"Delete {run.name}"):
    st.caption(f"Deletes {run.path} with its checkpoints and logs; refused while it runs.")
    sure = st.checkbox(f"Yes, delete {run.name} for good", key=f"delete_sure_{run.path}")
    if st.button("Delete", key=f"delete_{run.path}", disabled=not sure):
        try:
            jobs.delete_run(run.path)
        except jobs.JobError as error:
            st.error(error.page)
        except OSError as error:  # e.g. a file in it that this user may not remove
            st.error(f"Could not delete all of {run.path}: {error}")
        else:
            st.toast(f"Deleted {run.path}.")
            st.rerun()
