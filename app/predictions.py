"""Predictions: a checkpoint (or two side by side) on one image, with its
error map and scores, the worst images of a split, and where the first
checkpoint's pixels go over a split (its confusion matrices)."""

import hashlib

import streamlit as st

import ainnoseg
from ainnoseg import DataError, analysis, threads, viz
from ainnoseg.analysis import compare, confusion
from ainnoseg.checkpoints import cards as model_cards
from ainnoseg.files import stamp
from ainnoseg.inference import downloads, inputs

import widgets

SPLITS = ("val", "train", "test")
TAGS = ("A", "B")  # the first and second checkpoint in the worst-images table

st.title("Predictions")
first, second = st.columns(2)
with first:
    checkpoint_a = widgets.checkpoint_picker("Checkpoint", "pred_a")
with second:
    checkpoint_b = widgets.checkpoint_picker("Compare with", "pred_b", optional=True)
augment = st.toggle(f"Multi-scale {ainnoseg.QUICK_SCALES} + flip", key="pred_ms")
scales, flip = (ainnoseg.QUICK_SCALES, True) if augment else ((1.0,), False)
chosen = list(dict(c for c in (checkpoint_a, checkpoint_b) if c).items())
models = {label: widgets.load_model(path) for label, path in chosen}
models = {label: model for label, model in models.items() if model is not None}
if not models:
    st.stop()


@st.cache_data(max_entries=64, show_spinner=False)
def segment(path, modified, image_key, scales, flip, _model, _image):
    with threads.foreground():  # the cores a training job leaves (ainnoseg/threads.py)
        return ainnoseg.segment_image(_model, _image, scales=scales, flip=flip)


@st.cache_data(max_entries=32, show_spinner=False)
def sample(data, split, index, _dataset):
    return analysis.load_sample(_dataset, index)


def refuse(error, where=""):
    """A user's mistake (a bad file, a too small image) on the page, and stop."""
    st.error(f"{where}{error}")
    st.stop()


def uploaded_image():
    """(image, None, cache key, None, name) of an upload, checked and resized as the demo
    resizes it."""
    upload = st.file_uploader("An image (PNG, JPEG, ...)", key="pred_upload")
    if upload is None:
        st.stop()
    data = upload.getvalue()
    try:
        checked = inputs.load_upload(data, upload.name)
    except DataError as error:
        refuse(error)
    for note in checked.notes:
        st.info(note)
    for note in model_cards.other_images_notes([model_cards.release_of(model)
                                                for model in models.values()]):
        st.warning(note)
    return checked.pixels, None, hashlib.sha1(data).hexdigest(), None, upload.name


def choose_image():
    """(image, ground truth or None, cache key, dataset or None, name) from a split or
    an upload."""
    source = st.radio("Image", ["from a dataset", "upload"], horizontal=True, key="pred_source")
    if source == "upload":
        return uploaded_image()
    data, split, dataset, index = widgets.sample_picker("pred", SPLITS)
    try:
        image, mask = sample(data, split, index, dataset)
    except DataError as error:  # a damaged or huge image, a mask that does not fit it
        refuse(error, f"{data} ({split}) image {index}: ")
    return image, mask, f"{data}|{split}|{index}", dataset, analysis.sample_name(dataset, index)


@st.cache_resource
def worst_tables():
    """Scored splits, shared by every tab: {signature: table}."""
    return {}


def open_row():
    """A click on a row of the worst-images table (any cell) opens that image above."""
    row = widgets.clicked_row(st.session_state["worst_table"]["selection"])
    if row is not None:
        st.session_state["pred_index"] = st.session_state["worst_rows"][row]["index"]


def worst_images(dataset, image_key):
    st.subheader("Worst images")
    limit = st.slider("Images to score", 1, len(dataset), min(12, len(dataset)), key="worst_limit")
    signature = (tuple((label, str(path), stamp(path)) for label, path in chosen),
                 image_key.rsplit("|", 1)[0], limit, scales, flip)
    tables = worst_tables()
    tags = dict(zip(models, TAGS))  # short column names: two checkpoints' paths are long
    if signature not in tables and st.button(f"Score the first {limit} images", key="worst_go"):
        bar = st.progress(0.0)
        scores = {}
        for label, model in models.items():
            def step(done, total, label=label):
                bar.progress(done / total, text=f"{label}: {done} / {total} images")
            try:
                with threads.foreground():
                    scores[tags[label]] = analysis.score_images(model, dataset, range(limit),
                                                                scales, flip, on_image=step)
            except DataError as error:
                bar.empty()
                refuse(error, f"Cannot score the {limit} images: ")
        tables[signature] = analysis.worst_images(scores, metrics=("mean_iou", "boundary_iou"))
        bar.empty()
        st.rerun()  # without the button, which would only score them again
    if signature in tables:
        st.session_state["worst_rows"] = rows = tables[signature]
        named = ", ".join(f"{tag} = {label}" for label, tag in tags.items())
        st.caption(f"Per-image scores, worst mIoU first ({named}); click a row to open the "
                   "image above.")
        st.dataframe(rows, key="worst_table", on_select=open_row,
                     selection_mode=["single-row", "single-cell"], hide_index=True,
                     column_order=[column for column in rows[0] if column != "index"],
                     column_config=widgets.percent_columns(rows))
        st.download_button("Per-image scores (CSV)", downloads.metrics_csv(rows),
                           icon=":material/download:", mime="text/csv", key="worst_csv",
                           file_name="per_image_scores.csv")


@st.cache_resource
def confusion_counts():
    """Counted splits, shared by every tab: {signature: on_dataset's counts}."""
    return {}


def confusion_matrices(dataset, image_key):
    st.subheader("Where the pixels go")
    label, model = next(iter(models.items()))
    limit = st.slider("Images to count", 1, len(dataset), min(12, len(dataset)),
                      key="confusion_limit")
    path = dict(chosen)[label]
    signature = (str(path), stamp(path), image_key.rsplit("|", 1)[0], limit, scales, flip)
    counted = confusion_counts()
    if signature not in counted and st.button(f"Count the first {limit} images with {label}",
                                              key="confusion_go"):
        bar = st.progress(0.0)
        try:
            with threads.foreground():
                counted[signature] = confusion.on_dataset(
                    model, dataset, range(limit), scales, flip,
                    on_image=lambda done, total: bar.progress(
                        done / total, text=f"{label}: {done} / {total} images"))
        except DataError as error:
            bar.empty()
            refuse(error, f"Cannot count the {limit} images: ")
        bar.empty()
        st.rerun()  # without the button, which would only count them again
    if signature not in counted:
        return
    counts, names = counted[signature], model.meta.class_names
    st.caption(f"{label} on {counts['images']} images. Row: the true class; colour: the share "
               "of its pixels given to each class (hover for pixel counts). Boundary pixels "
               "lie within the Boundary IoU band of a true boundary.")
    for column, part, title in zip(st.columns(2), confusion.PARTS,
                                   ("All pixels", "Boundary pixels")):
        rows = confusion.table_rows(counts[part], names, part)
        column.altair_chart(widgets.confusion_chart(rows, title), width="stretch")
        column.markdown("\n".join(f"- {row['text']}"
                                   for row in confusion.largest(counts[part], names))
                        or "No confusions.")
    st.download_button("Download both matrices (CSV)", confusion.csv_text(counts, names),
                       file_name="confusion.csv", mime="text/csv", key="confusion_csv")


def offer_downloads(image_name, label, labels, picture, where):
    """The label map (class indices) and the overlay of one checkpoint, as PNG files."""
    stem = downloads.file_stem(f"{image_name}_{label}")
    left, right = where.columns(2)
    left.download_button("Label map (PNG)", downloads.label_png(labels),
                         icon=":material/download:", file_name=f"{stem}_labels.png",
                         mime="image/png", key=f"png_{label}",
                         help="one grey level per class index, 255 ignored")
    right.download_button("Overlay (PNG)", downloads.picture_png(picture),
                          icon=":material/download:", file_name=f"{stem}_overlay.png",
                          mime="image/png", key=f"overlay_{label}")


image, mask, image_key, dataset, name = choose_image()
first_model = next(iter(models.values()))
try:
    inputs.check_size(image.shape[:2], compare.largest_stride(models.values()), scales, name)
except DataError as error:
    refuse(error)
if mask is not None and dataset.num_classes != len(first_model.meta.class_names):
    st.warning(f"The dataset has {dataset.num_classes} classes and the model "
               f"{len(first_model.meta.class_names)}: no error map or scores.")
    mask = None

top = st.columns([2, 2, 2, 1])
top[0].image(image, caption=f"image ({image.shape[1]} x {image.shape[0]})", width="stretch")
if mask is not None:
    top[1].image(viz.overlay(image, mask, first_model.meta.palette), caption="ground truth",
                 width="stretch")
    widgets.show_error_key(top[2])
widgets.show_legend(first_model.meta.class_names, first_model.meta.palette, top[3])

score_rows = []
for label, model in models.items():
    path = dict(chosen)[label]
    with st.spinner(f"Segmenting with {label} ..."):
        labels = segment(str(path), stamp(path), image_key, scales, flip, model, image)
    row = st.columns([2, 2, 3])
    picture = viz.overlay(image, labels.numpy(), model.meta.palette)
    # Hover names the class under the pointer.
    row[0].plotly_chart(widgets.prediction_figure(image, labels.numpy(), model.meta.palette,
                                                  model.meta.class_names, title=label,
                                                  size=300),  # its column: 2/7 of the page's width
                        key=f"figure_{label}", config={"displayModeBar": False})
    offer_downloads(name, label, labels.numpy(), picture, row[0])
    if mask is not None:
        row[1].image(viz.error_map(labels.numpy(), mask), width="stretch",
                     caption=f"{label}: errors near boundaries apart from interior ones")
        scores = analysis.image_metrics(labels, mask, len(model.meta.class_names))
        rows = [{"on this image": analysis.TABLE_NAMES[key], label: value}
                for key, value in scores.items()]
        row[2].dataframe(rows, column_config=widgets.percent_columns(rows), hide_index=True)
        score_rows.append({"image": name, "checkpoint": label, **scores})
if score_rows:
    st.download_button("Scores on this image (CSV)", downloads.metrics_csv(score_rows),
                       icon=":material/download:", mime="text/csv", key="scores_csv",
                       file_name=f"{downloads.file_stem(name)}_scores.csv")

if dataset is not None and mask is not None:
    worst_images(dataset, image_key)
    confusion_matrices(dataset, image_key)
