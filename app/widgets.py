"""Widgets the dashboard's pages share: the runs folder, a checkpoint picker,
a dataset picker, cached models and datasets, a legend, percent columns.

Caches are keyed by file path and `ainnoseg.files.stamp` (modification time
and size), so a checkpoint written again is loaded again; everything else is
a call into `ainnoseg`.
"""

import os
from pathlib import Path

import altair as alt
import streamlit as st

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


def percent_columns(rows, exclude=("index", "round", "step", "samples")):
    """column_config showing the numeric columns of `rows` (fractions) as %."""
    keys = {key for row in rows for key, value in row.items() if isinstance(value, float)}
    return {key: st.column_config.NumberColumn(key, format="percent")
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
