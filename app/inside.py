"""Inside: what a model computes for one pixel of one image. Click a pixel of
the prediction (or type its row and column) and see where position attention
looks from it, the channel attention matrix, OCR's soft object region of its
class and how it weighs OCR's regions, and the top classes of every output."""

import streamlit as st

from ainnoseg import DataError, analysis, threads
from ainnoseg.analysis import inside, pixel
from ainnoseg.files import stamp

import widgets

SPLITS = ("val", "train", "test")
DEFAULT_CHECKPOINT = "synthetic/ainnoseg_w18s"

st.title("Inside")
st.caption("Click a pixel of the prediction, or type its row and column: the figures below "
           "show what the model computes for that pixel. Hover the prediction for the class "
           "under the pointer.")


@st.cache_resource(max_entries=2, show_spinner=False)
def looked_inside(path, modified, image_key, _model, _image):
    """One forward pass, taken apart; a click reuses it. Two kept: each holds
    every output's full-size logits."""
    with threads.foreground():  # the cores a training job leaves (ainnoseg/threads.py)
        return inside.look_inside(_model, _image)


@st.cache_data(max_entries=32, show_spinner=False)
def sample(data, split, index, _dataset):
    return analysis.load_sample(_dataset, index)


def choose_model():
    """(label, released name or path, model) of the chosen checkpoint; stops the
    page without one."""
    names = list(widgets.checkpoint_choices())
    default = names.index(DEFAULT_CHECKPOINT) if DEFAULT_CHECKPOINT in names else 0
    chosen = widgets.checkpoint_picker("Checkpoint", "inside_model", index=default)
    model = widgets.load_model(chosen[1]) if chosen else None
    if model is None:
        st.stop()
    return chosen[0], chosen[1], model


def choose_image():
    """(image, cache key) of an image of a dataset split; stops the page without one."""
    data, split, dataset, index = widgets.sample_picker("inside", SPLITS)
    try:
        image, _ = sample(data, split, index, dataset)
    except DataError as error:  # a damaged or huge image
        st.error(f"{data} ({split}) image {index}: {error}")
        st.stop()
    return image, f"{data}|{split}|{index}"


def take_click():
    """A click on the prediction sets the pixel's row and column."""
    point = widgets.clicked_pixel(st.session_state["inside_click"]["selection"])
    if point is not None:
        st.session_state["inside_y"], st.session_state["inside_x"] = point


label, path, model = choose_model()
image, image_key = choose_image()
names, palette = model.meta.class_names, model.meta.palette
with st.spinner(f"Running {label} on the image ..."):
    try:
        seen = looked_inside(str(path), stamp(path), image_key, model, image)
    except ValueError as error:  # an image smaller than the network's stride
        st.error(f"{label} cannot segment this image: {error}")
        st.stop()
missing = pixel.missing_message(model, label)
if missing:
    st.info(missing)

st.session_state.setdefault("inside_y", image.shape[0] // 2)
st.session_state.setdefault("inside_x", image.shape[1] // 2)
picture, about = st.columns([3, 2])
with about:
    row_column, col_column = st.columns(2)
    y = row_column.number_input("Pixel row (y)", min_value=0, step=1, key="inside_y")
    x = col_column.number_input("Pixel column (x)", min_value=0, step=1, key="inside_x")
    try:
        point = pixel.check_point(seen, (y, x))
    except ValueError as error:
        st.error(f"Choose another pixel: {error}.")
        st.stop()
    class_id = int(seen.labels[point])
    st.subheader(f"Pixel (y={point[0]}, x={point[1]}): {names[class_id]}")
    st.caption("The three most probable classes at this pixel in each output of the model: "
               "the final one and any auxiliary head's.")
    probability = st.column_config.ProgressColumn("probability", format="percent",
                                                  min_value=0.0, max_value=1.0,
                                                  step=widgets.PERCENT_STEP)
    st.dataframe(pixel.top_classes(seen, point, names), hide_index=True,
                 column_order=["output", "class", "probability"],
                 column_config={"probability": probability})
    widgets.show_legend(names, palette)
with picture:
    st.plotly_chart(widgets.prediction_figure(seen.image, seen.labels, palette, names, point,
                                              title=f"{label}: prediction (click a pixel)"),
                    on_select=take_click, selection_mode="points", key="inside_click",
                    config={"displayModeBar": False})

size = seen.image.shape[:2]
if seen.position_input is not None or seen.channel_attention is not None:
    st.subheader("Dual attention")
    looks, channels = st.columns(2)
    if seen.position_input is not None:
        row = inside.attention_row(seen, point)
        share = inside.attention_on_class(seen, point, seen.labels)
        looks.plotly_chart(widgets.heat_figure(
            seen.image, inside.upsample(row / row.mean(), size), "× a flat row", point,
            title="Where position attention looks from the pixel"), key="inside_pam")
        looks.caption(f"One row of the position attention map: the pixel's weights over the "
                      f"image's {row.numel()} feature cells, "
                      f"divided by a flat row's weight. {share['mass']:.0%} of it lands on "
                      f"pixels predicted {names[class_id]}, which hold {share['area']:.0%} "
                      "of the image.")
    if seen.channel_attention is not None:
        count = seen.channel_attention.shape[0]
        channels.plotly_chart(widgets.matrix_figure(
            seen.channel_attention, f"Channel attention ({count} x {count})"), key="inside_cam")
        channels.caption(f"Row i: the weights with which channel i gathers the {count} "
                         "channels of the attention branch, the same for every pixel.")

if seen.regions is not None:
    st.subheader("Object-contextual representations (OCR)")
    region, weights = st.columns(2)
    region.plotly_chart(widgets.heat_figure(
        seen.image, pixel.soft_region(seen, class_id), "of peak", point,
        title=f"OCR's soft object region of {names[class_id]}"), key="inside_region")
    region.caption(f"The spatial softmax OCR averages pixels with to describe "
                   f"{names[class_id]}, divided by its largest value.")
    weights.plotly_chart(widgets.class_bar_figure(
        names, pixel.region_weights(seen, point), palette,
        "How the pixel weighs OCR's object regions", "weight"), key="inside_weights")
    weights.caption("The pixel's attention over the object regions: the share of each "
                    "region's representation it adds to its own (the weights sum to 100%).")
