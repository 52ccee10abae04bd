"""HRNet, DANet and AinnoSeg on one image, side by side: each model's
prediction with its class boundaries, where the models disagree, and with a
ground truth their scores, error maps and ranking.

    python app/demo.py                          # http://127.0.0.1:7860, this machine only
    python app/demo.py --camvid PATH            # CamVid val frames among the examples
    python app/demo.py --host 0.0.0.0 --port 8080 --share

The paper's Figure 7 shows as pictures that "neither HRNet nor DANet can
effectively segment the object boundary pixels and little objects"; here any
image checks it, with numbers. The computing lives in `ainnoseg` (compare,
compare_report, inputs, model_sets, examples); this file is the layout and
its handlers. Models load once and are shared by every session; one request
runs at a time and the others wait in the queue.
"""

import argparse
from pathlib import Path

import gradio as gr

from ainnoseg.analysis import compare, compare_report
from ainnoseg.data import examples
from ainnoseg.inference import inputs
from ainnoseg.checkpoints import cards as model_cards
from ainnoseg import threads, viz
from ainnoseg.data import DataError
from ainnoseg.checkpoints.files import CheckpointError
from ainnoseg.checkpoints.sets import FAMILIES, ModelStore, default_set, missing_note
from ainnoseg.checkpoints.released import RELEASES_DIR

EXTRA = "Your checkpoint"
SLOTS = (*FAMILIES, EXTRA)
MULTI_SCALES = (0.75, 1.0, 1.25)  # --scales 0.5 0.75 1 1.25 1.5 1.75 2 for the paper's seven
QUEUE = {"concurrency_limit": 1, "concurrency_id": "models"}
INTRO = """# HRNet, DANet and AinnoSeg side by side
The paper's Figure 7 says *"neither HRNet nor DANet can effectively segment the object
boundary pixels and little objects"*. Check it on any image: each column is one model's
prediction with its class boundaries; add a ground-truth mask (or pick an example, which
has one) for each model's scores, its errors near boundaries (orange) apart from those
inside regions (red), and a ranking."""

# Set by main() from the command line; tests replace them before launching.
STORE = ModelStore()
CAMVID = examples.find_camvid()
SCALES = MULTI_SCALES
MAX_SIDE = inputs.MAX_SIDE


def _file(value):
    """(path, name) of a file input's value: a path, or the file dict events
    get without preprocessing (so that damaged files reach our checks); or
    (None, None)."""
    if not value:
        return None, None
    if isinstance(value, dict):
        if not value.get("path"):
            raise gr.Error("The file did not arrive; upload it again.")
        return value["path"], value.get("orig_name") or Path(value["path"]).name
    return str(value), Path(value).name


def _models(set_name, extra):
    """{column: model} of the chosen set, plus an uploaded checkpoint."""
    path, name = _file(extra)
    try:
        models = STORE.models(set_name)
        if path:
            models[EXTRA] = STORE.file(path)
    except CheckpointError as error:  # an upload's message names it, not its temporary path
        message = str(error).replace(str(Path(path).resolve()), name) if path else str(error)
        raise gr.Error(message) from None
    if not models:
        raise gr.Error(f"The {set_name} set has no HRNet, DANet or AinnoSeg release.")
    classes = [len(model.class_names) for model in models.values()]
    if path and classes[-1] != classes[0]:
        raise gr.Error(f"{name} predicts {classes[-1]} classes but the {set_name} models "
                       f"predict {classes[0]}; add a checkpoint trained on the same classes.")
    return models


def _prepare(image, mask, set_name, extra, scales):
    """(checked image, ground truth or None, models), every user error a gr.Error."""
    path, name = _file(image)
    if path is None:
        raise gr.Error("No image: upload one, take a webcam picture or pick an example.")
    models = _models(set_name, extra)
    first = next(iter(models.values()))
    try:
        checked = inputs.load_image(path, name, max_side=MAX_SIDE)
        inputs.check_size(checked.size, compare.largest_stride(models.values()), scales,
                          checked.name)
        mask_path, mask_name = _file(mask)
        truth = None if mask_path is None else inputs.load_mask(
            mask_path, checked, first.class_names, first.palette, mask_name)
    except DataError as error:
        raise gr.Error(str(error)) from None
    return checked, truth, models


def _pictures(state, opacity, boundaries_only, show_disagreement):
    """The prediction pictures and the disagreement map of a finished run."""
    image, palette = state["image"], state["palette"]
    out = {slot.picture: compare.prediction_picture(image, p.labels, palette, opacity,
                                                    boundaries_only)
           for slot, p in _placed(state["predictions"])}
    counts = compare.distinct_labels([p.labels for p in state["predictions"]])
    out[disagreement] = gr.Image(compare.disagreement_picture(image, counts),
                                 visible=show_disagreement)
    return out


def _placed(predictions):
    """(slot, prediction) pairs: each prediction in its family's column."""
    by_name = {p.name: p for p in predictions}
    return [(slot, by_name[name]) for name, slot in zip(SLOTS, slots) if name in by_name]


def segment(image, mask, set_name, extra, multiscale, opacity, boundaries_only,
            show_disagreement):
    """Run every model of the set on the image; fill the columns, the
    disagreement map and, with a ground truth, the error maps and ranking."""
    scales, flip = (SCALES, True) if multiscale else ((1.0,), False)
    checked, truth, models = _prepare(image, mask, set_name, extra, scales)
    with threads.foreground():  # the cores a training job leaves (ainnoseg/threads.py)
        predictions = compare.run_models(models, checked.pixels, scales, flip)
    first = next(iter(models.values()))
    for p in predictions:
        if p.name == EXTRA:
            p.model_name = _file(extra)[1]
    state = {"image": checked.pixels, "palette": first.palette, "predictions": predictions}
    rows = (compare.score_predictions(predictions, truth, len(first.class_names))
            if truth is not None else [])
    scores = {row["name"]: row for row in rows}
    out = {results_state: state, **_pictures(state, opacity, boundaries_only, show_disagreement)}
    present = {slot for slot, _ in _placed(predictions)}
    for slot in slots:
        out[slot.column] = gr.Column(visible=slot in present)
    for slot, p in _placed(predictions):
        out[slot.caption] = compare_report.column_caption(p, scores.get(p.name))
        out[slot.errors] = gr.Image(viz.error_map(p.labels, truth) if rows else None,
                                    visible=bool(rows))
    counts = compare.distinct_labels([p.labels for p in predictions])
    summary = compare.disagreement_summary(counts, truth)
    out[disagreement_text] = gr.Markdown(
        compare_report.disagreement_text(summary, len(predictions)), visible=show_disagreement)
    out[truth_picture] = gr.Image(
        viz.overlay(checked.pixels, truth, first.palette) if rows else None, visible=bool(rows))
    headers, table = compare.ranking_table(compare.rank(rows))
    out[ranking] = gr.Dataframe(table, headers=headers, visible=bool(rows))
    out[legend] = viz.legend(first.class_names, first.palette)
    size = f"{checked.size[1]} x {checked.size[0]}"
    out[notes] = " ".join(filter(None, [
        f"**{checked.name}**, {size} pixels.", *checked.notes,
        missing_note(set_name, STORE.sets().get(set_name, {})), compare_report.machine_note()]))
    out[notes] += "".join(f"\n\n**Note:** {note}"
                          for note in other_images_notes(checked.name, models))
    out[scale_model] = gr.Dropdown(choices=[p.name for p in predictions])
    return out


def other_images_notes(name, models):
    """What the models were trained on and what to expect, for each training
    dataset the image `name` is no example of (an upload, or a CamVid frame
    shown to the synthetic models)."""
    shown = examples.source_of(name, camvid=CAMVID)
    releases = [model_cards.release_of(model) for model in models.values()]
    return model_cards.other_images_notes([r for r in releases if r["dataset"] != shown])


def redraw(state, opacity, boundaries_only, show_disagreement):
    """Repaint the last results with new options, without running the models again."""
    if not state:
        return {}
    return _pictures(state, opacity, boundaries_only, show_disagreement)


def compare_scales(image, mask, set_name, extra, model_name, opacity, boundaries_only):
    """One model's single-scale and multi-scale + flip predictions, and what changed."""
    checked, truth, models = _prepare(image, mask, set_name, extra, SCALES)
    if model_name not in models:
        raise gr.Error(f"Choose one of {', '.join(models)} for the multi-scale comparison.")
    model = {model_name: models[model_name]}
    with threads.foreground():
        single = compare.run_models(model, checked.pixels)[0]
        multi = compare.run_models(model, checked.pixels, SCALES, flip=True)[0]
    palette, names = models[model_name].palette, models[model_name].class_names
    change = compare.scale_change(single.labels, multi.labels, names, truth)
    pictures = [compare.prediction_picture(checked.pixels, p.labels, palette, opacity,
                                           boundaries_only) for p in (single, multi)]
    counts = compare.distinct_labels([single.labels, multi.labels])
    text = compare_report.scale_change_text(model_name, change, SCALES,
                                            (single.seconds, multi.seconds))
    return tuple(pictures), compare.disagreement_picture(checked.pixels, counts), text


def demo_examples():
    """The examples offered: the bundled synthetic scenes, then CamVid val frames."""
    return examples.list_examples(camvid=CAMVID)


def _example_samples():
    return gr.Dataset(samples=[[str(e["image"])] for e in demo_examples()])


def pick_example(index, set_name):
    """(image path, mask path, model set) of example `index`: the set trained
    on the example's kind of image (a CamVid frame runs the CamVid models, a
    synthetic scene the synthetic ones) when it is released, else `set_name`."""
    chosen = demo_examples()[index]
    own = chosen["source"] if chosen["source"] in STORE.sets() else set_name
    return str(chosen["image"]), (str(chosen["mask"]) if chosen["mask"] else None), own


def set_changed(set_name):
    """The chosen set's card (what its models were trained on, their scores,
    the images they work on), its columns and the models the multi-scale
    comparison offers."""
    families = STORE.sets().get(set_name, {})
    card = model_cards.set_card(set_name, STORE.members(set_name))
    note = "\n\n".join(filter(None, [missing_note(set_name, families), card]))
    columns = [gr.Column(visible=name in families) for name in SLOTS]
    return (note, gr.Dropdown(choices=list(families), value=next(iter(families), None)),
            *columns)


def page_setup():
    """What the page shows on opening: the released sets (a new release joins
    without a restart), the default set with its card, and the examples."""
    sets = STORE.sets()
    chosen = default_set(sets)
    shown = set_changed(chosen) if chosen else (
        "No HRNet, DANet or AinnoSeg release found: publish one with `ainnoseg publish`.",
        gr.Dropdown(choices=[]), *(gr.Column() for _ in SLOTS))
    return (gr.Dropdown(choices=list(sets), value=chosen), gr.Checkbox(label=_scales_label()),
            _example_samples(), *shown)


def shown_on_page(handler, outputs, message_to, failed):
    """`handler` as an event: its outputs, with `message_to` emptied; or, for
    a user's mistake (a gr.Error), every output emptied and `failed` plus the
    message in `message_to`, where it stays until the next request (a toast
    fades and would leave the old pictures under "Error" badges)."""
    def event(*args):
        try:
            result = handler(*args)
        except gr.Error as error:
            emptied = {component: None for component in outputs
                       if not isinstance(component, gr.Column)}
            return {**emptied, message_to: f"**{failed}:** {error.message}"}
        if not isinstance(result, dict):
            result = dict(zip(outputs, result))
        return {message_to: "", **result}
    event.__name__ = handler.__name__
    return event


def _scales_label():
    return f"Multi-scale ({', '.join(f'{s:g}' for s in SCALES)}) + flip"


def launch_options():
    """Folders outside the working directory the page may serve files from."""
    return {"allowed_paths": [str(path) for path in (examples.EXAMPLES_DIR, CAMVID) if path]}


class Slot:
    """One model's column: its prediction, caption and error map."""

    def __init__(self, name):
        with gr.Column(visible=name != EXTRA, min_width=200) as self.column:
            self.picture = gr.Image(label=name, format="png", interactive=False,
                                    buttons=["fullscreen"])
            self.caption = gr.Markdown()
            self.errors = gr.Image(label=f"{name}: errors", format="png", interactive=False,
                                   visible=False, buttons=["fullscreen"])


with gr.Blocks(title="AinnoSeg: HRNet, DANet and AinnoSeg side by side") as demo:
    gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                image_input = gr.Image(label="Image", type="filepath", image_mode=None,
                                       sources=["upload", "webcam", "clipboard"], height=260)
                mask_input = gr.Image(label="Ground truth (optional): class indices, 255 ignored",
                                      type="filepath", image_mode=None, sources=["upload"],
                                      height=260)
            example_list = gr.Dataset(
                label="Examples with ground truth (synthetic scenes, then CamVid frames when a "
                      "CamVid folder is given); each runs the model set trained on its kind",
                components=[image_input], samples=[], type="index", samples_per_page=12)
        with gr.Column(scale=2):
            model_set = gr.Dropdown(label="Model set", choices=[])
            set_note = gr.Markdown()
            multiscale = gr.Checkbox(label=_scales_label())
            opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Overlay opacity")
            with gr.Row():
                boundaries_only = gr.Checkbox(label="Boundaries only")
                show_disagreement = gr.Checkbox(label="Disagreement map", value=True)
            run_button = gr.Button("Segment", variant="primary")
    with gr.Row():  # the whole width: a file box in the narrow column above is clipped
        extra_input = gr.File(label="Add a checkpoint (.pt) as a fourth column",
                              file_types=[".pt"], height=90)
    with gr.Column(elem_id="comparison"):
        status = gr.Markdown(elem_id="status")
        notes = gr.Markdown()
        with gr.Row(equal_height=False):
            slots = [Slot(name) for name in SLOTS]
            with gr.Column(scale=0, min_width=150):
                legend = gr.Image(label="Classes", format="png", interactive=False,
                                  show_label=False, buttons=[])
                gr.Image(viz.legend(list(viz.ERROR_COLORS), list(viz.ERROR_COLORS.values())),
                         label="Error map", format="png", interactive=False, buttons=[])
                gr.Image(viz.legend(list(compare.DISAGREEMENT_COLORS),
                                    list(compare.DISAGREEMENT_COLORS.values())),
                         label="Disagreement", format="png", interactive=False, buttons=[])
        with gr.Row():
            truth_picture = gr.Image(label="Ground truth", format="png", interactive=False,
                                     visible=False)
            disagreement = gr.Image(label="Where the models disagree", format="png",
                                    interactive=False)
            disagreement_text = gr.Markdown()
        ranking = gr.Dataframe(label="The models on this image, best first", visible=False,
                               interactive=False)
    with gr.Accordion("Single- against multi-scale + flip, for one model", open=True):
        with gr.Row():
            scale_model = gr.Dropdown(label="Model", choices=[])
            scale_button = gr.Button("Compare single- and multi-scale")
        with gr.Row():
            scale_slider = gr.ImageSlider(label="single-scale | multi-scale + flip",
                                          format="png", type="numpy")
            scale_changed = gr.Image(label="Pixels whose label changed", format="png",
                                     interactive=False)
        scale_text = gr.Markdown()
    results_state = gr.State()

    segment_inputs = [image_input, mask_input, model_set, extra_input, multiscale, opacity,
                      boundaries_only, show_disagreement]
    segment_outputs = [notes, legend, truth_picture, disagreement, disagreement_text, ranking,
                       scale_model, results_state,
                       *(c for s in slots for c in (s.column, s.picture, s.caption, s.errors)),
                       status]
    on_segment = shown_on_page(segment, segment_outputs, status, "Not segmented")
    redraw_outputs = [disagreement, *(s.picture for s in slots)]
    set_outputs = [set_note, scale_model, *(s.column for s in slots)]
    demo.load(page_setup, None, [model_set, multiscale, example_list, *set_outputs])
    model_set.change(set_changed, model_set, set_outputs)
    run_button.click(on_segment, segment_inputs, segment_outputs, preprocess=False,
                     api_name="segment", **QUEUE)
    example_list.click(pick_example, [example_list, model_set],
                       [image_input, mask_input, model_set], api_visibility="private").then(
        on_segment, segment_inputs, segment_outputs, preprocess=False, **QUEUE)
    for option in (boundaries_only, show_disagreement):
        option.change(redraw, [results_state, opacity, boundaries_only, show_disagreement],
                      redraw_outputs, api_visibility="private")
    opacity.release(redraw, [results_state, opacity, boundaries_only, show_disagreement],
                    redraw_outputs, api_visibility="private")
    scale_outputs = [scale_slider, scale_changed, scale_text]
    on_compare_scales = shown_on_page(compare_scales, scale_outputs, scale_text, "Not compared")
    scale_button.click(on_compare_scales, [image_input, mask_input, model_set, extra_input,
                                           scale_model, opacity, boundaries_only],
                       scale_outputs, preprocess=False, api_name="compare_scales", **QUEUE)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true",
                        help="also open a public gradio.live link: anyone with it can use it")
    parser.add_argument("--camvid", metavar="PATH",
                        help="a CamVid folder whose val frames join the examples "
                             f"(default {examples.CAMVID_DIR} when it exists)")
    parser.add_argument("--scales", type=float, nargs="+", default=MULTI_SCALES,
                        help="the multi-scale option's scales (default 0.75 1 1.25)")
    parser.add_argument("--max-side", type=int, default=inputs.MAX_SIDE,
                        help="longer images are resized to this many pixels (default 640)")
    parser.add_argument("--releases", default=str(RELEASES_DIR),
                        help="the folder of released models' manifests")
    args = parser.parse_args(argv)
    if min(args.scales) <= 0 or args.max_side < 64:
        parser.error("--scales must be positive and --max-side at least 64 pixels")
    try:
        args.camvid = examples.find_camvid(args.camvid)
    except FileNotFoundError as error:
        parser.error(str(error))
    return args


def main(argv=None):
    global STORE, CAMVID, SCALES, MAX_SIDE
    args = parse_args(argv)
    STORE, CAMVID = ModelStore(args.releases), args.camvid
    SCALES, MAX_SIDE = tuple(args.scales), args.max_side
    threads.serve_interactively()  # jobs launched beside it keep it a core
    demo.queue(max_size=32).launch(server_name=args.host, server_port=args.port,
                                   share=args.share, **launch_options())


if __name__ == "__main__":
    main()
