"""Mosaic: samples as training sees them, each beside its four sources."""

import streamlit as st

from ainnoseg import DataError, viz
from ainnoseg.analysis import previews
from ainnoseg.files import stamp

import widgets

st.title("Mosaic")
st.caption("Four training samples stitched around a random centre on a canvas twice their "
           "size and halved back (AinnoSeg adds 0.3 of them per original). A sample number "
           "is no image index: with the seed it picks the four images and the centre, so any "
           "number gives a picture, the same one every time.")

with st.sidebar:
    data = widgets.dataset_picker("mosaic_data")
    seed = st.number_input("Seed", 0, 10_000, 0, key="mosaic_seed")
    scale = st.slider("Scale range (rescale ratio)", 0.25, 2.5, (0.75, 1.5), 0.05,
                      key="mosaic_scale")
    centre = st.slider("Centre range (fraction of the size)", 0.0, 2.0, (0.5, 1.5), 0.05,
                       key="mosaic_centre")
    ratio = st.slider("Ratio (Mosaic samples per original)", 0.0, 1.0, 0.3, 0.05,
                      key="mosaic_ratio")

if not data:
    st.info("Choose a dataset in the sidebar.")
    st.stop()


@st.cache_resource(max_entries=4, show_spinner=False)
def view(data, scale, modified):
    return previews.training_view(data, "train", ratio_range=scale)


@st.cache_data(max_entries=64, show_spinner=False)
def mosaic(data, scale, modified, index, seed, centre):
    return previews.mosaic_preview(view(data, scale, modified), index, seed, centre)


@st.cache_data(max_entries=16, show_spinner=False)
def batch_of(data, scale, modified, ratio, centre, seed):
    return previews.training_batch(view(data, scale, modified), 8, ratio, centre, seed)


modified = stamp(data) if data != widgets.SYNTHETIC else 0
try:
    dataset = view(data, scale, modified)
except DataError as error:
    st.error(f"{data}: {error}")
    st.stop()

left, right = st.columns(2)
images = f"{len(dataset)} training image{'s' if len(dataset) != 1 else ''}"
first = left.number_input(f"First sample (any number: each picks 4 of the {images})", 0,
                          100_000, 17, key="mosaic_first",
                          help="Sample n is the n-th draw of four images and a centre, not "
                               "image n; its sources are named below it.")
count = right.slider("Samples shown", 1, 6, 2, key="mosaic_count")

try:  # a damaged or huge image, a mask that does not fit its image
    with st.spinner("Stitching ..."):
        samples = [mosaic(data, scale, modified, index, seed, centre)
                   for index in range(first, first + count)]
        batch = batch_of(data, scale, modified, ratio, centre, seed)
except DataError as error:
    st.error(f"{data}: {error}")
    st.stop()
palette = dataset.palette
for sample in samples:
    st.subheader(f"Sample {sample['index']}")
    picture, sources = st.columns([2, 3])
    picture.image(viz.overlay(sample["image"], sample["mask"], palette, alpha=0.45),
                  caption=f"centre {sample['centre']} on the 2x canvas, "
                          f"{100 * sample['ignored_share']:.0f} % ignored (plain grey: no image "
                          "covers it)",
                  width="stretch")
    for column, source in zip(sources.columns(4), sample["sources"]):
        column.image(source["image"], caption=f"{source['quadrant']}: #{source['index']}",
                     width="stretch")
        column.image(viz.colorize(source["mask"], palette), width="stretch")

st.subheader(f"A training batch of 8 at ratio {ratio:.2f}")
st.caption(f"{batch['originals']} samples, then the {batch['mosaics']} Mosaic sample(s) "
           "the collate adds (on average ratio x 8).")
for row in range(0, len(batch["images"]), 8):
    for column, i in zip(st.columns(8), range(row, min(row + 8, len(batch["images"])))):
        kind = "original" if i < batch["originals"] else "Mosaic"
        column.image(viz.overlay(batch["images"][i], batch["masks"][i], palette, alpha=0.45),
                     caption=kind, width="stretch")
widgets.show_legend(dataset.class_names, palette, st.sidebar)
