"""Widgets the dashboard's pages share: the runs folder, a checkpoint picker,
a dataset picker, cached models and datasets, a legend, percent columns, and
Plotly figures of a prediction (hover names the class, a click picks a pixel)
and of maps laid over an image.

Caches are keyed by file path and `ainnoseg.files.stamp` (modification time
and size), so a checkpoint written again is loaded again; everything else is
a call into `ainnoseg`.
"""

import base64
import io
import os
from pathlib import Path

import altair as alt
import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

import ainnoseg
from ainnoseg import CheckpointError, DataError, analysis, viz
from ainnoseg.data import build_dataset
from ainnoseg.files import stamp
from ainnoseg.runs import launching

SYNTHETIC = "synthetic"
SYNTHETIC_LABEL = "synthetic (embedded scenes)"
OTHER_FOLDER = "another folder..."
DATASET_ROOTS = ("../shared/datasets", "datasets", "data")


def runs_root():
    """The runs folder chosen in the sidebar (default $AINNOSEG_RUNS or runs/)."""
    return Path(st.session_state.get("runs_root") or os.environ.get("AINNOSEG_RUNS", "runs"))


# Streamlit shows a "percent" column with the decimals of its step less two:
# a step of 0.001 gives every cell one decimal (44.2 %, 7.0 %), not 44.22 and 7.4.
PERCENT_STEP = 0.001


def percent_columns(rows, exclude=("index", "round", "step", "samples")):
    """column_config showing the numeric columns of `rows` (fractions) as %,
    one decimal each."""
    keys = {key for row in rows for key, value in row.items() if isinstance(value, float)}
    return {key: st.column_config.NumberColumn(key, format="percent", step=PERCENT_STEP)
            for key in keys if key not in exclude}


@st.cache_resource(max_entries=6, show_spinner=False)
def _model(name_or_path, modified):
    return ainnoseg.load(name_or_path)


def load_model(name_or_path):
    """The model of a released name or checkpoint file, cached; None (and an
    error on the page) if it cannot be loaded."""
    try:
        with st.spinner(f"Loading {name_or_path} ..."):
            return _model(str(name_or_path), stamp(name_or_path))
    except (CheckpointError, OSError, ValueError, RuntimeError) as error:
        st.error(f"Cannot load {name_or_path}: {error}")
        return None


def checkpoint_choices(extra=None):
    """{name: (released name or checkpoint path, description, model card)}:
    `extra` ({name: path}) first, then the released models (with their
    cards), then every checkpoint under the runs folder (named by its path
    there)."""
    choices = {name: (str(path), "", "") for name, path in (extra or {}).items()}
    # The embedded synthetic scenes are the default dataset: their models first.
    releases = sorted(ainnoseg.list_released(), key=lambda r: r["dataset"] != "synthetic")
    for release in releases:
        choices[release["name"]] = (release["name"],
                                    f"released, val mIoU {release['mean_iou']} %",
                                    release["card"])
    for found in analysis.find_checkpoints(runs_root()):
        choices[found["label"]] = (str(found["path"]), "in the runs folder", "")
    return choices


def checkpoint_picker(label, key, optional=False, extra=None, index=0):
    """A select box of checkpoints, with a released model's card under it;
    returns (name, released name or path) or None."""
    choices = checkpoint_choices(extra)
    if not choices:
        st.warning("No checkpoint found: no released model and none under the runs folder.")
        return None
    options = (["(none)"] if optional else []) + list(choices)

    def describe(name):
        about = choices.get(name, ("", "", ""))[1]
        return f"{name} ({about})" if about else name

    chosen = st.selectbox(label, options, index=min(index, len(options) - 1), key=key,
                          format_func=describe)
    if chosen == "(none)":
        return None
    if choices[chosen][2]:
        st.caption(choices[chosen][2])  # the release's model card: data, budget, limits
    return chosen, choices[chosen][0]


def dataset_picker(key, label="Dataset", default=SYNTHETIC):
    """"synthetic" or a dataset folder: the embedded scenes, folders found
    beside the project (and `default`), or any folder typed in."""
    found = launching.find_datasets(DATASET_ROOTS)
    options = list(dict.fromkeys([SYNTHETIC, *found, str(default or SYNTHETIC), OTHER_FOLDER]))
    chosen = st.selectbox(label, options, key=key, index=options.index(str(default or SYNTHETIC)),
                          format_func=lambda o: SYNTHETIC_LABEL if o == SYNTHETIC else o)
    if chosen == OTHER_FOLDER:
        return st.text_input("Folder", key=f"{key}_folder",
                             placeholder="/path/to/dataset").strip() or None
    return chosen


@st.cache_resource(max_entries=8, show_spinner=False)
def _dataset(name_or_path, split, modified):
    return build_dataset(name_or_path, split)


def open_dataset(name_or_path, split):
    """The split of a dataset without transforms, cached; None and a message
    on the page for a path that does not exist or holds no such split."""
    if not name_or_path:
        st.info("Type the path of a dataset folder.")
        return None
    try:
        folder = None if name_or_path == SYNTHETIC else name_or_path
        return _dataset(name_or_path, split, stamp(folder) if folder else 0)
    except DataError as error:
        st.error(f"{name_or_path}: {error}")
        return None


def sample_picker(key, splits):
    """(dataset name or folder, split, dataset, index): a dataset, a split and an
    image index chosen in one row (keys `<key>_data`, `_split`, `_index`);
    stops the page without a dataset."""
    left, middle, right = st.columns([3, 1, 1])
    with left:
        data = dataset_picker(f"{key}_data")
    split = middle.selectbox("Split", splits, key=f"{key}_split")
    dataset = open_dataset(data, split)
    if dataset is None:
        st.stop()
    index = right.number_input(f"Image (0-{len(dataset) - 1})", 0, len(dataset) - 1,
                               key=f"{key}_index")
    return data, split, dataset, index


def clicked_row(selection):
    """The row a click in a table selected: a selected row, or the row of a
    selected cell (a click anywhere in the row); None without one."""
    if selection.get("rows"):
        return selection["rows"][0]
    if selection.get("cells"):
        return selection["cells"][0][0]
    return None


def show_legend(class_names, palette, where=st):
    where.image(viz.legend(class_names, palette), caption="classes")


def show_error_key(where=st):
    """The key to `viz.error_map`'s colours."""
    where.image(viz.legend(list(viz.ERROR_COLORS), list(viz.ERROR_COLORS.values())),
                caption="error map")


def confusion_chart(rows, title):
    """A confusion-matrix heatmap of `ainnoseg.analysis.confusion.table_rows`:
    true classes down the side, predicted across, coloured by share."""
    order = list(dict.fromkeys(row["true"] for row in rows))
    return alt.Chart(alt.Data(values=rows), title=title).mark_rect().encode(
        x=alt.X("predicted:N", sort=order, title="predicted"),
        y=alt.Y("true:N", sort=order, title="true class", axis=alt.Axis(labelLimit=200)),
        color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]),
                        legend=alt.Legend(format="%")),
        tooltip=["true:N", "predicted:N", alt.Tooltip("share:Q", format=".1%"),
                 alt.Tooltip("pixels:Q", format=",")])


# A prediction figure has one clickable point per pixel up to this many pixels
# (a 300 x 300 image), and one every few pixels on larger images.
CLICK_POINTS = 90_000
MARKED = dict(symbol="circle-open", size=16, color="white", line=dict(width=3))


def _image_layout(figure, height, width, size=560):
    """Axes of image pixels (y down), no margins, the figure as tall as the image
    is for `size` pixels of width."""
    figure.update_layout(margin=dict(l=0, r=0, t=30, b=0), height=round(size * height / width),
                         showlegend=False)
    figure.update_xaxes(showgrid=False, zeroline=False, range=[-0.5, width - 0.5])
    figure.update_yaxes(showgrid=False, zeroline=False, range=[height - 0.5, -0.5],
                        scaleanchor="x")
    return figure


def _picture(image):
    """An image trace sent as a PNG (a fraction of its pixels' numbers), no hover."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    source = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    return go.Image(source=source, hoverinfo="skip")


def _mark(figure, point):
    if point is not None:
        figure.add_trace(go.Scatter(x=[point[1]], y=[point[0]], mode="markers", marker=MARKED,
                                    hoverinfo="skip"))


def prediction_figure(image, labels, palette, class_names, point=None, title=None, size=560):
    """A Plotly figure of `labels` (H, W) painted over `image` whose hover names
    the class under the pointer; with `st.plotly_chart(on_select=...,
    selection_mode="points")` a click selects a pixel (`clicked_pixel` reads
    it). Plotly cannot select an image's pixels, so invisible points lie over
    them, one trace per class (named for the hover): one point per pixel, or
    one every few pixels past CLICK_POINTS. `point` (y, x) is marked with a ring.
    `size` is about the width in pixels the figure will be shown at."""
    labels = np.asarray(labels)
    height, width = labels.shape
    step = max(1, int(np.ceil(np.sqrt(height * width / CLICK_POINTS))))
    small = np.min_scalar_type(max(height, width))  # 2 bytes a coordinate, not 8
    ys, xs = (grid.ravel().astype(small) for grid in np.mgrid[0:height:step, 0:width:step])
    shown = labels[ys, xs]
    figure = go.Figure(_picture(viz.overlay(image, labels, palette)))
    for class_id, name in [*enumerate(class_names), (None, "no class")]:
        where = (np.isin(shown, range(len(class_names)), invert=True) if class_id is None
                 else shown == class_id)
        if where.any():
            figure.add_trace(go.Scattergl(
                x=xs[where], y=ys[where], mode="markers", name=name,
                marker=dict(size=max(6, 2 * step), opacity=0),
                hovertemplate="%{fullData.name}<br>x=%{x}, y=%{y}<extra></extra>"))
    _mark(figure, point)
    figure.update_layout(title=title, clickmode="event+select", dragmode=False)
    return _image_layout(figure, height, width, size)


def clicked_pixel(selection):
    """(y, x) of the pixel a click on a `prediction_figure` selected, None without one."""
    points = (selection or {}).get("points") or []
    located = [p for p in points if p.get("x") is not None and p.get("y") is not None]
    if not located:
        return None
    return int(round(located[0]["y"])), int(round(located[0]["x"]))


def heat_figure(image, values, label, point=None, title=None, colorscale="Inferno"):
    """The image with an (H, W) map of `values` laid over it in colour, the
    colour bar titled `label`; hover shows the value; `point` (y, x) is marked."""
    height, width = np.asarray(values).shape
    figure = go.Figure(_picture(image))
    figure.add_trace(go.Heatmap(
        z=np.asarray(values, dtype=np.float32), opacity=0.6, colorscale=colorscale,
        colorbar=dict(title=label),
        hovertemplate=f"{label}: %{{z:.3g}}<br>x=%{{x}}, y=%{{y}}<extra></extra>"))
    _mark(figure, point)
    figure.update_layout(title=title)
    return _image_layout(figure, height, width)


def matrix_figure(matrix, title, axis="channel"):
    """A square matrix (rows summing to 1) as a heatmap: row i is what `axis` i
    draws from each `axis` j."""
    figure = go.Figure(go.Heatmap(
        z=np.asarray(matrix), colorscale="Blues", colorbar=dict(title="weight"),
        hovertemplate=f"{axis} %{{y}} takes %{{z:.3g}} from {axis} %{{x}}<extra></extra>"))
    figure.update_layout(title=title, margin=dict(l=0, r=0, t=30, b=0), height=460)
    figure.update_xaxes(title=f"{axis} drawn from")
    figure.update_yaxes(title=axis, autorange="reversed", scaleanchor="x")
    return figure


def class_bar_figure(class_names, values, palette, title, label):
    """One bar per class in its palette colour, the value axis titled `label`."""
    colors = [f"rgb{tuple(int(c) for c in palette[i])}" for i in range(len(class_names))]
    figure = go.Figure(go.Bar(x=list(class_names), y=np.asarray(values), marker_color=colors,
                              hovertemplate=f"%{{x}}: %{{y:.1%}} {label}<extra></extra>"))
    figure.update_layout(title=title, margin=dict(l=0, r=0, t=30, b=0), height=360)
    figure.update_yaxes(title=label, tickformat=".0%")
    return figure
