"""HRNet, DANet and AinnoSeg on one image, side by side: each model's
prediction with its class boundaries, where the models disagree, and with a
ground truth their scores, error maps and ranking.

    python app/demo.py                          # http://127.0.0.1:7860, this machine only
    python app/demo.py --camvid PATH            # CamVid val frames among the examples
    python app/demo.py --host 0.0.0.0 --port 8080 --share

The paper's Figure 7 shows as pictures that "neither HRNet nor DANet can
effectively segment the object boundary pixels and little objects"; here any
image checks it, with numbers. This file is the page: its layout, each
control wired to its handler, and the command line. The handlers are plain
functions in demo_handlers.py; the computing lives in `ainnoseg`. Models load
once and are shared by every session; one request runs at a time and the
others wait in the queue.
"""

import argparse

import gradio as gr

from ainnoseg import threads, viz
from ainnoseg.analysis import compare
from ainnoseg.checkpoints import RELEASES_DIR
from ainnoseg.checkpoints.sets import ModelStore
from ainnoseg.data import examples
from ainnoseg.inference import QUICK_SCALES, inputs

import demo_handlers as handlers
from demo_handlers import EXTRA, SCALE_OUTPUTS, SEGMENT_OUTPUTS, SLOT_PARTS, SLOTS, Settings

QUEUE = {"concurrency_limit": 1, "concurrency_id": "models"}
TITLE = "AinnoSeg: HRNet, DANet and AinnoSeg side by side"
INTRO = """# HRNet, DANet and AinnoSeg side by side
The paper's Figure 7 says *"neither HRNet nor DANet can effectively segment the object
boundary pixels and little objects"*. Check it on any image: each column is one model's
prediction with its class boundaries; add a ground-truth mask (or pick an example, which
has one) for each model's scores, its errors near boundaries (orange) apart from those
inside regions (red), and a ranking."""
SEGMENT_INPUTS = ("image", "mask", "model_set", "extra", "multiscale", "opacity",
                  "boundaries_only", "show_disagreement")
SCALE_INPUTS = ("image", "mask", "model_set", "extra", "scale_model", "opacity",
                "boundaries_only")
SET_OUTPUTS = ("set_note", "scale_model", *(f"{slot} column" for slot in SLOTS))


def _slot(name):
    """One model's column: its prediction, caption and error map."""
    with gr.Column(visible=name != EXTRA, min_width=200) as column:
        picture = gr.Image(label=name, format="png", interactive=False, buttons=["fullscreen"])
        caption = gr.Markdown()
        errors = gr.Image(label=f"{name}: errors", format="png", interactive=False,
                          visible=False, buttons=["fullscreen"])
    return dict(zip((f"{name} {part}" for part in SLOT_PARTS), (column, picture, caption, errors)))


def _inputs(settings):
    """The image, its optional mask, the examples, the model set and the options."""
    page = {}
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                page["image"] = gr.Image(label="Image", type="filepath", image_mode=None,
                                         sources=["upload", "webcam", "clipboard"], height=260)
                page["mask"] = gr.Image(
                    label="Ground truth (optional): class indices, 255 ignored",
                    type="filepath", image_mode=None, sources=["upload"], height=260)
            page["examples"] = gr.Dataset(
                label="Examples with ground truth (synthetic scenes, then CamVid frames when a "
                      "CamVid folder is given); each runs the model set trained on its kind",
                components=[page["image"]], samples=[], type="index", samples_per_page=12)
        with gr.Column(scale=2):
            page["model_set"] = gr.Dropdown(label="Model set", choices=[])
            page["set_note"] = gr.Markdown()
            page["multiscale"] = gr.Checkbox(label=handlers.scales_label(settings.scales))
            page["opacity"] = gr.Slider(0, 1, value=0.5, step=0.05, label="Overlay opacity")
            with gr.Row():
                page["boundaries_only"] = gr.Checkbox(label="Boundaries only")
                page["show_disagreement"] = gr.Checkbox(label="Disagreement map", value=True)
            page["run"] = gr.Button("Segment", variant="primary")
    with gr.Row():  # the whole width: a file box in the narrow column above is clipped
        page["extra"] = gr.File(label="Add a checkpoint (.pt) as a fourth column",
                                file_types=[".pt"], height=90)
    return page


def _keys():
    """The legends of the class colours, the error map and the disagreement map."""
    legend = gr.Image(label="Classes", format="png", interactive=False, show_label=False,
                      buttons=[])
    for label, colors in (("Error map", viz.ERROR_COLORS),
                          ("Disagreement", compare.DISAGREEMENT_COLORS)):
        gr.Image(viz.legend(list(colors), list(colors.values())), label=label, format="png",
                 interactive=False, buttons=[])
    return legend


def _results():
    """The models' columns, the disagreement map, the ground truth and the ranking."""
    page = {}
    with gr.Column(elem_id="comparison"):
        page["status"] = gr.Markdown(elem_id="status")
        page["notes"] = gr.Markdown()
        with gr.Row(equal_height=False):
            for name in SLOTS:
                page.update(_slot(name))
            with gr.Column(scale=0, min_width=150):
                page["legend"] = _keys()
        with gr.Row():
            page["truth"] = gr.Image(label="Ground truth", format="png", interactive=False,
                                     visible=False)
            page["disagreement"] = gr.Image(label="Where the models disagree", format="png",
                                            interactive=False)
            page["disagreement_text"] = gr.Markdown()
        page["ranking"] = gr.Dataframe(label="The models on this image, best first",
                                       visible=False, interactive=False)
        page["downloads"] = gr.File(
            label="Downloads: each model's label map (class indices, 255 ignored) and "
                  "overlay, and with a ground truth the scores (CSV)",
            file_count="multiple", interactive=False, visible=False)
    return page


def _scale_comparison():
    """One model at a single scale against multi-scale + flip."""
    page = {}
    with gr.Accordion("Single- against multi-scale + flip, for one model", open=True):
        with gr.Row():
            page["scale_model"] = gr.Dropdown(label="Model", choices=[])
            page["scale_button"] = gr.Button("Compare single- and multi-scale")
        with gr.Row():
            page["scale_slider"] = gr.ImageSlider(label="single-scale | multi-scale + flip",
                                                  format="png", type="numpy")
            page["scale_changed"] = gr.Image(label="Pixels whose label changed", format="png",
                                             interactive=False)
        page["scale_text"] = gr.Markdown()
    return page


def _handler(function, settings, page):
    """`function(settings, *inputs)` as a Gradio event: a {name: value} result
    goes to the page's components of those names, a tuple stays as it is."""
    def event(*args):
        result = function(settings, *args)
        if isinstance(result, dict):
            return {page[name]: value for name, value in result.items()}
        return result
    event.__name__ = function.__name__
    return event


def build_demo(settings=None):
    """The page for `settings` (default `Settings()`): the inputs, one column
    per model, the comparison and the single- against multi-scale accordion,
    each control wired to its handler."""
    settings = settings or Settings()
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(INTRO)
        page = {**_inputs(settings), **_results(), **_scale_comparison(), "state": gr.State()}
        take = (lambda names: [page[name] for name in names])
        segment_event = (_handler(handlers.on_segment, settings, page), take(SEGMENT_INPUTS),
                         take(SEGMENT_OUTPUTS))
        demo.load(_handler(handlers.page_setup, settings, page), None,
                  take(("model_set", "examples", *SET_OUTPUTS)))
        page["model_set"].change(_handler(handlers.set_changed, settings, page),
                                 page["model_set"], take(SET_OUTPUTS))
        page["run"].click(*segment_event, preprocess=False, api_name="segment", **QUEUE)
        page["examples"].click(_handler(handlers.pick_example, settings, page),
                               take(("examples", "model_set")),
                               take(("image", "mask", "model_set")),
                               api_visibility="private").then(
            *segment_event, preprocess=False, **QUEUE)

        def repaint(state, opacity, boundaries_only, show_disagreement):
            shown = handlers.redraw(state, opacity, boundaries_only, show_disagreement)
            return {page[name]: value for name, value in shown.items()}

        options = take(("state", "opacity", "boundaries_only", "show_disagreement"))
        pictures = take(("disagreement", *(f"{slot} picture" for slot in SLOTS)))
        for listen in (page["boundaries_only"].change, page["show_disagreement"].change,
                       page["opacity"].release):
            listen(repaint, options, pictures, api_visibility="private")
        page["scale_button"].click(_handler(handlers.on_compare_scales, settings, page),
                                   take(SCALE_INPUTS), take(SCALE_OUTPUTS), preprocess=False,
                                   api_name="compare_scales", **QUEUE)
    return demo


demo = build_demo()  # `gradio app/demo.py` reloads it; tests build their own with Settings


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
    parser.add_argument("--scales", type=float, nargs="+", default=QUICK_SCALES,
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


def settings_of(args):
    """The page's `Settings` from the command line's arguments."""
    return Settings(ModelStore(args.releases), args.camvid, tuple(args.scales), args.max_side)


def main(argv=None):
    args = parse_args(argv)
    settings = settings_of(args)
    threads.serve_interactively()  # jobs launched beside it keep it a core
    build_demo(settings).queue(max_size=32).launch(
        server_name=args.host, server_port=args.port, share=args.share,
        **handlers.launch_options(settings))


if __name__ == "__main__":
    main()
