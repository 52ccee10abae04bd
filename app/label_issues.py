"""Label issues: the images of a labelled split whose labels a model
confidently contradicts, worst first, with the suspected pixels beside the
label and the prediction, and the most common swaps (Lad & Mueller 2023)."""

import streamlit as st

import ainnoseg
from ainnoseg import DataError, analysis, threads, viz
from ainnoseg.analysis import label_issues
from ainnoseg.files import stamp

import widgets

SPLITS = ("val", "train")
LIMIT = 24  # images judged by default

st.title("Label issues")
st.caption("Ranks images by label quality: the soft minimum of each pixel's self-confidence "
           "(the probability the model gives the pixel's label). A pixel is suspected where "
           "another class confidently beats its label (per-class thresholds). Method: Lad & "
           "Mueller 2023, *Estimating label quality and errors in semantic segmentation data "
           "via any model*. Judge a split the model was not trained on where you can: on its "
           "own training split it has partly learned the errors.")
left, middle, right = st.columns([3, 3, 1])
with left:
    checkpoint = widgets.checkpoint_picker("Checkpoint", "issues_checkpoint")
with middle:
    data = widgets.dataset_picker("issues_data")
split = right.selectbox("Split", SPLITS, key="issues_split")
if checkpoint is None:
    st.stop()
label, path = checkpoint
model = widgets.load_model(path)
dataset = widgets.open_dataset(data, split)
if model is None or dataset is None:
    st.stop()
if not hasattr(dataset, "num_classes"):
    st.error(f"The {split} split of {data} has no labels to judge; pick a labelled split.")
    st.stop()
if dataset.num_classes != len(model.meta.class_names):
    st.error(f"{label} predicts {len(model.meta.class_names)} classes and {data} has "
             f"{dataset.num_classes}: pick a checkpoint trained on this dataset.")
    st.stop()


@st.cache_resource
def found_issues():
    """Judged splits, shared by every tab: {signature: LabelIssues}."""
    return {}


@st.cache_data(max_entries=16, show_spinner=False)
def prediction(path, modified, data, split, index, _model, _image):
    with threads.foreground():
        return ainnoseg.segment_image(_model, _image).numpy()


limit = st.slider("Images to judge", 1, len(dataset), min(LIMIT, len(dataset)),
                  key="issues_limit")
signature = (str(path), stamp(path), str(data), split, limit)
found = found_issues()
if signature not in found and st.button(f"Judge the first {limit} images with {label}",
                                        key="issues_go"):
    bar = st.progress(0.0)
    try:
        with threads.foreground():
            found[signature] = label_issues.find(
                model, dataset, range(limit),
                on_image=lambda done, total: bar.progress(done / total,
                                                          text=f"{done} / {total} images"))
    except DataError as error:
        st.error(f"Cannot judge the {limit} images: {error}")
        st.stop()
    finally:
        bar.empty()
    st.rerun()  # without the button, which would only judge them again
if signature not in found:
    st.stop()
issues = found[signature]

at_boundary, labelled_at_boundary = issues.band_share()
st.subheader("Most common swaps")
st.markdown("\n".join(f"- {swap['text']}" for swap in issues.swaps[:6])
            or "No pixel is suspected.")
st.caption(f"{at_boundary:.0%} of the suspected pixels lie within the Boundary IoU band of a "
           f"labelled boundary, where {labelled_at_boundary:.0%} of all labelled pixels lie.")


def open_row():
    row = widgets.clicked_row(st.session_state["issues_table"]["selection"])
    if row is not None:
        st.session_state["issues_rank"] = row + 1


st.subheader("Images, worst labels first")
st.dataframe(issues.rows, key="issues_table", on_select=open_row,
             selection_mode=["single-row", "single-cell"], hide_index=True,
             column_order=["name", "score", "suspected", "swap"],
             column_config={"score": st.column_config.NumberColumn(
                                "label quality", format="%.3f",
                                help="soft minimum of the pixels' self-confidence: 0 worst"),
                            "suspected": st.column_config.NumberColumn(
                                format="percent", step=widgets.PERCENT_STEP)})
rank = st.number_input(f"Show image ranked (1-{len(issues.rows)})", 1, len(issues.rows),
                       key="issues_rank", help="or click a row of the table")
row = issues.rows[rank - 1]
image, mask = analysis.load_sample(dataset, row["index"])
predicted = prediction(str(path), stamp(path), str(data), split, row["index"], model, image)
palette = model.meta.palette
columns = st.columns([2, 2, 2, 1])
columns[0].image(label_issues.suspected_picture(image, issues.suspected[row["index"]]),
                 caption=f"{row['name']}: suspected pixels (magenta), "
                         f"{row['suspected']:.1%} of the labelled ones", width="stretch")
columns[1].image(viz.overlay(image, mask, palette), caption="its label", width="stretch")
columns[2].image(viz.overlay(image, predicted, palette), caption=f"{label}'s prediction",
                 width="stretch")
widgets.show_legend(model.meta.class_names, palette, columns[3])
if row["swap"]:
    st.caption(f"Most common swap in this image: {row['swap']}.")
