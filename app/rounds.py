"""Rounds: a self-training run round by round, and an audit of its pseudo-labels."""

import altair as alt
import streamlit as st

from ainnoseg import ConfigError, DataError, analysis, threads, viz
from ainnoseg.data import IGNORE_INDEX
from ainnoseg.files import stamp
from ainnoseg.runs import control as controls
from ainnoseg.runs import list_runs, load_run, rounds

import widgets

st.title("Rounds")
root = widgets.runs_root()
runs = [run for run in list_runs(root) if run.kind == "selftrain"]
if not runs:
    st.info(f"No self-training run under `{root}` yet: launch one on the Launch page "
            "(preset selftrain_synthetic_quick).")
    st.stop()
names = [run.name for run in runs]
run = load_run(runs[names.index(st.selectbox("Self-training run", names, key="rounds_run"))].path)
control = controls.is_control_run(run)
st.caption(f"{run.status} · {run.model} on {run.dataset} · "
           f"{len(run.rounds) - 1} student round(s) after the teacher (round 0)" +
           (" · the control: its students train on the labelled data" if control else ""))

table = rounds.round_table(run.rounds)
st.dataframe(table, hide_index=True, column_config=widgets.percent_columns(table),
             placeholder="-")  # round 0 has no pseudo-labels, a running round no scores

control_runs = {other.name: other.path for other in runs
                if controls.is_control_run(other) and other.path != run.path}
if not control and control_runs:
    st.subheader("Against a control")
    st.caption("The control trains each student as many iterations from the same teacher on "
               "the labelled data alone: the difference is what the pseudo-labels bought, "
               "not the extra training. Rounds both runs have finished.")
    chosen = st.selectbox("Control run", list(control_runs), index=None,
                          placeholder="choose a control run", key="rounds_control")
    if chosen is not None:
        try:
            record = controls.control_comparison(run.path, control_runs[chosen], partial=True)
        except (ValueError, OSError) as error:  # not its control, or unreadable
            st.warning(str(error))
        else:
            against = controls.comparison_table(record)
            if against:
                st.dataframe(against, hide_index=True,
                             column_config=widgets.percent_columns(against))
            else:
                st.caption("No round that both runs have evaluated yet.")

cells = rounds.class_iou_cells(run.rounds)
if cells:
    st.subheader("Val IoU per class and round")
    st.caption("Colour: IoU; text: IoU and change against the teacher (round 0), in points.")
    for cell in cells:
        shown = cell["delta"] is not None and cell["round"] > 0
        delta = f" ({round(100 * cell['delta'], 1) + 0.0:+.1f})" if shown else ""  # no -0.0
        cell["label"] = "-" if cell["iou"] is None else f"{100 * cell['iou']:.1f}{delta}"
    # Classes down the side, so that their names are never rotated or clipped.
    base = alt.Chart(alt.Data(values=cells)).encode(
        y=alt.Y("class:N", sort=None, title=None, axis=alt.Axis(labelLimit=200)),
        x=alt.X("round:O", title="round", axis=alt.Axis(labelAngle=0, orient="top")))
    heat = base.mark_rect().encode(color=alt.Color("iou:Q", title="IoU",
                                                   scale=alt.Scale(domain=[0, 1])))
    text = base.mark_text(fontSize=12).encode(
        text="label:N", color=alt.condition("datum.iou > 0.6", alt.value("white"),
                                            alt.value("black")))
    height = 26 * len({cell["class"] for cell in cells}) + 40
    st.altair_chart(heat + text, width="stretch", height=height)

histogram = rounds.pseudo_label_cells(run.path)
if histogram:
    st.subheader("Pseudo-labels: class shares per round")
    chart = alt.Chart(alt.Data(values=histogram)).mark_bar().encode(
        x=alt.X("class:N", sort=None, title=None), y=alt.Y("share:Q", axis=alt.Axis(format="%")),
        xOffset="round:N", color="round:N", tooltip=["round:N", "class:N", "share:Q", "pixels:Q"])
    st.altair_chart(chart, width="stretch", height=300)


@st.cache_data(max_entries=8, show_spinner=False)
def ranking(path, modified):
    return rounds.disagreement_ranking(path)


@st.cache_resource(max_entries=2, show_spinner=False)
def pool_of(path, modified):
    return rounds.open_run_pool(path)


@st.cache_data(max_entries=16, show_spinner=False)
def confidence(checkpoint, modified, stem, scales, flip, _model, _image):
    with threads.foreground():
        return analysis.confidence_map(_model, _image, scales, flip)[1]


st.subheader("Pseudo-label browser")
if control:
    st.caption("A control run (student_data=labelled) writes no pseudo-labels: its students "
               "train on the labelled data.")
    st.stop()
pseudo_folders = rounds.pseudo_label_folders(run.path)
ranked = ranking(run.path, tuple(stamp(folder) for folder in pseudo_folders))
if not ranked:
    st.caption("No pseudo-labels yet: round 1 writes them after the teacher.")
    st.stop()
st.caption("Pool images, those the rounds disagree on most first (the share of pixels two "
           "rounds both kept but labelled differently; with one round, the share ignored). "
           "Black pixels: ignored by the confidence threshold.")
stems = [row["stem"] for row in ranked]
left, right = st.columns([1, 2])
left.dataframe(ranked, hide_index=True, column_config=widgets.percent_columns(ranked),
               placeholder="-")
stem = right.selectbox("Pool image", stems, key="rounds_stem")
try:
    pool = pool_of(run.path, stamp(rounds.config_file(run.path)))
    image, truth = rounds.pool_sample(pool, run.path, stem)
    class_names, palette = rounds.run_classes(run.path)
except (ConfigError, DataError, ValueError) as error:
    st.error(f"The pool or the data of {run.name} cannot be read here: {error}")
    st.stop()
labels = rounds.pseudo_labels(run.path, stem)

columns = st.columns(2 + len(labels))
columns[0].image(image, caption=f"pool image {stem}", width="stretch")
if truth is not None:
    columns[1].image(viz.overlay(image, truth, palette),
                     caption="its ground truth (training never sees it)",
                     width="stretch")
for column, (index, label) in zip(columns[2:], labels.items()):
    kept = (label != IGNORE_INDEX).mean()
    column.image(viz.colorize(label, palette), width="stretch",
                 caption=f"round {index} pseudo-label, {100 * kept:.0f} % kept")

index = st.selectbox("Teacher confidence of round", list(labels), key="rounds_confidence")
teacher = rounds.round_teacher(run.path, index)
shades = rounds.teacher_confidence(run.path, index, stem)
if teacher and shades is None:  # a run from before confidences were stored: compute it
    model = widgets.load_model(teacher["checkpoint"])
    if model is not None:
        with st.spinner(f"Computing the confidence of {teacher['checkpoint']} on {stem} "
                        f"(scales {', '.join(map(str, teacher['scales']))}"
                        f"{' + flip' if teacher['flip'] else ''}) ..."):
            shades = confidence(str(teacher["checkpoint"]), stamp(teacher["checkpoint"]),
                                stem, teacher["scales"], teacher["flip"], model, image)
if teacher and shades is not None:
    shade, key = st.columns([2, 3])
    shade.image(analysis.confidence_picture(shades, teacher["threshold"]), width="stretch",
                caption=f"confidence of {teacher['checkpoint']} (white: 1); red: below the "
                        f"threshold {teacher['threshold']}, ignored")
    widgets.show_legend(class_names, palette, key)
