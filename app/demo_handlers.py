"""What the demo's controls do (app/demo.py is the page): plain functions of
the page's `Settings` and the inputs, each returning {output name: value}
(a model's column parts are "<slot> <part>", e.g. "HRNet picture") or a
tuple in its outputs' order. Every mistake a user can make is a
`gr.Error("what is wrong and what to do")`. The computing lives in `ainnoseg`
(compare, compare_report, inputs, sets, examples, cards).
"""

import atexit
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import gradio as gr

from ainnoseg import QUICK_SCALES, CheckpointError, DataError, threads, viz
from ainnoseg.analysis import compare, compare_report
from ainnoseg.checkpoints import cards as model_cards
from ainnoseg.checkpoints.sets import FAMILIES, ModelStore, default_set, missing_note
from ainnoseg.data import examples
from ainnoseg.inference import downloads, inputs

EXTRA = "Your checkpoint"
SLOTS = (*FAMILIES, EXTRA)
SLOT_PARTS = ("column", "picture", "caption", "errors")
SEGMENT_OUTPUTS = ("notes", "legend", "truth", "disagreement", "disagreement_text", "ranking",
                   "downloads", "scale_model", "state",
                   *(f"{slot} {part}" for slot in SLOTS for part in SLOT_PARTS), "status")
SCALE_OUTPUTS = ("scale_slider", "scale_changed", "scale_text")
KEPT_DOWNLOADS = 16  # the requests whose files stay on disk for Gradio to serve


@dataclass
class Settings:
    """What the command line sets: the released models, the CamVid folder whose
    val frames join the examples, the multi-scale option's scales and the
    side longer images are resized to."""

    store: ModelStore = field(default_factory=ModelStore)
    camvid: Path | None = field(default_factory=examples.find_camvid)
    scales: tuple = QUICK_SCALES  # --scales 0.5 0.75 1 1.25 1.5 1.75 2: the paper's seven
    max_side: int = inputs.MAX_SIDE


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


def _models(store, set_name, extra):
    """{column: model} of the chosen set, plus an uploaded checkpoint."""
    path, name = _file(extra)
    try:
        models = store.models(set_name)
        if path:
            models[EXTRA] = store.file(path)
    except CheckpointError as error:  # an upload's message names it, not its temporary path
        message = str(error).replace(str(Path(path).resolve()), name) if path else str(error)
        raise gr.Error(message) from None
    if not models:
        raise gr.Error(f"The {set_name} set has no HRNet, DANet or AinnoSeg release.")
    classes = [model.meta.num_classes for model in models.values()]
    if path and classes[-1] != classes[0]:
        raise gr.Error(f"{name} predicts {classes[-1]} classes but the {set_name} models "
                       f"predict {classes[0]}; add a checkpoint trained on the same classes.")
    return models


def _prepare(settings, image, mask, set_name, extra, scales):
    """(checked image, ground truth or None, models), every user error a gr.Error."""
    path, name = _file(image)
    if path is None:
        raise gr.Error("No image: upload one, take a webcam picture or pick an example.")
    models = _models(settings.store, set_name, extra)
    meta = next(iter(models.values())).meta
    try:
        checked = inputs.load_image(path, name, max_side=settings.max_side)
        inputs.check_size(checked.size, compare.largest_stride(models.values()), scales,
                          checked.name)
        mask_path, mask_name = _file(mask)
        truth = None if mask_path is None else inputs.load_mask(
            mask_path, checked, meta.class_names, meta.palette, mask_name)
    except DataError as error:
        raise gr.Error(str(error)) from None
    return checked, truth, models


def _placed(predictions):
    """(slot, prediction) pairs: each prediction in its family's column."""
    by_name = {p.name: p for p in predictions}
    return [(slot, by_name[slot]) for slot in SLOTS if slot in by_name]


def redraw(state, opacity, boundaries_only, show_disagreement):
    """Repaint the last results with new options, without running the models again."""
    if not state:
        return {}
    image, palette = state["image"], state["palette"]
    out = {f"{slot} picture": compare.prediction_picture(image, p.labels, palette, opacity,
                                                         boundaries_only)
           for slot, p in _placed(state["predictions"])}
    counts = compare.distinct_labels([p.labels for p in state["predictions"]])
    out["disagreement"] = gr.Image(compare.disagreement_picture(image, counts),
                                   visible=show_disagreement)
    return out


def _columns(predictions, rows, truth):
    """Each column shown or hidden, with its caption and error map."""
    scores = {row["name"]: row for row in rows}
    placed = _placed(predictions)
    out = {f"{slot} column": gr.Column(visible=slot in dict(placed)) for slot in SLOTS}
    for slot, p in placed:
        out[f"{slot} caption"] = compare_report.column_caption(p, scores.get(p.name))
        out[f"{slot} errors"] = gr.Image(viz.error_map(p.labels, truth) if rows else None,
                                         visible=bool(rows))
    return out


def _comparison(image, truth, predictions, rows, meta, show_disagreement):
    """What the models' predictions say together: disagreement, ground truth, ranking."""
    counts = compare.distinct_labels([p.labels for p in predictions])
    summary = compare.disagreement_summary(counts, truth)
    headers, table = compare.ranking_table(compare.rank(rows))
    return {
        "disagreement_text": gr.Markdown(
            compare_report.disagreement_text(summary, len(predictions)),
            visible=show_disagreement),
        "truth": gr.Image(viz.overlay(image, truth, meta.palette) if rows else None,
                          visible=bool(rows)),
        "ranking": gr.Dataframe(table, headers=headers, visible=bool(rows)),
        "legend": viz.legend(meta.class_names, meta.palette),
        "scale_model": gr.Dropdown(choices=[p.name for p in predictions]),
    }


@cache
def downloads_root():
    """The folder this process writes the page's downloads in, removed at exit."""
    root = Path(tempfile.mkdtemp(prefix="ainnoseg-demo-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def _download_files(image_name, image, predictions, rows, palette):
    """Each model's label map (class indices) and overlay as PNG files, and with a
    ground truth the scores as CSV, in a new folder of `downloads_root` (the
    oldest beyond KEPT_DOWNLOADS removed)."""
    stem = downloads.file_stem(image_name)
    files = {}
    for slot, p in _placed(predictions):
        name = f"{stem}_{downloads.file_stem(slot)}"
        files[f"{name}_labels.png"] = downloads.label_png(p.labels)
        files[f"{name}_overlay.png"] = downloads.picture_png(viz.overlay(image, p.labels,
                                                                         palette))
    if rows:
        files[f"{stem}_scores.csv"] = downloads.metrics_csv(
            [{"image": image_name, **row} for row in rows])
    root = downloads_root()
    folders = sorted(root.iterdir(), key=lambda folder: folder.stat().st_mtime)
    for old in folders[:max(0, len(folders) - KEPT_DOWNLOADS + 1)]:
        shutil.rmtree(old, ignore_errors=True)
    return [str(path) for path in downloads.write_files(root / uuid.uuid4().hex, files)]


def other_images_notes(settings, name, models):
    """What the models were trained on and what to expect, for each training
    dataset the image `name` is no example of (an upload, or a CamVid frame
    shown to the synthetic models)."""
    shown = examples.source_of(name, camvid=settings.camvid)
    releases = [model_cards.release_of(model) for model in models.values()]
    return model_cards.other_images_notes([r for r in releases if r["dataset"] != shown])


def _notes(settings, checked, set_name, models):
    size = f"{checked.size[1]} x {checked.size[0]}"
    text = " ".join(filter(None, [
        f"**{checked.name}**, {size} pixels.", *checked.notes,
        missing_note(set_name, settings.store.sets().get(set_name, {})),
        compare_report.machine_note()]))
    return text + "".join(f"\n\n**Note:** {note}"
                          for note in other_images_notes(settings, checked.name, models))


def segment(settings, image, mask, set_name, extra, multiscale, opacity, boundaries_only,
            show_disagreement):
    """Run every model of the set on the image; fill the columns, the
    disagreement map and, with a ground truth, the error maps and ranking."""
    scales, flip = (settings.scales, True) if multiscale else ((1.0,), False)
    checked, truth, models = _prepare(settings, image, mask, set_name, extra, scales)
    with threads.foreground():  # the cores a training job leaves (ainnoseg/threads.py)
        predictions = compare.run_models(models, checked.pixels, scales, flip)
    for p in predictions:
        if p.name == EXTRA:
            p.model_name = _file(extra)[1]
    meta = next(iter(models.values())).meta
    rows = (compare.score_predictions(predictions, truth, meta.num_classes)
            if truth is not None else [])
    state = {"image": checked.pixels, "palette": meta.palette, "predictions": predictions}
    files = _download_files(checked.name, checked.pixels, predictions, rows, meta.palette)
    return {"state": state, **redraw(state, opacity, boundaries_only, show_disagreement),
            "downloads": gr.File(files, visible=True),
            **_columns(predictions, rows, truth),
            **_comparison(checked.pixels, truth, predictions, rows, meta, show_disagreement),
            "notes": _notes(settings, checked, set_name, models)}


def compare_scales(settings, image, mask, set_name, extra, model_name, opacity,
                   boundaries_only):
    """One model's single-scale and multi-scale + flip predictions, and what changed."""
    checked, truth, models = _prepare(settings, image, mask, set_name, extra, settings.scales)
    if model_name not in models:
        raise gr.Error(f"Choose one of {', '.join(models)} for the multi-scale comparison.")
    model = {model_name: models[model_name]}
    with threads.foreground():
        single = compare.run_models(model, checked.pixels)[0]
        multi = compare.run_models(model, checked.pixels, settings.scales, flip=True)[0]
    meta = models[model_name].meta
    change = compare.scale_change(single.labels, multi.labels, meta.class_names, truth)
    pictures = [compare.prediction_picture(checked.pixels, p.labels, meta.palette, opacity,
                                           boundaries_only) for p in (single, multi)]
    counts = compare.distinct_labels([single.labels, multi.labels])
    text = compare_report.scale_change_text(model_name, change, settings.scales,
                                            (single.seconds, multi.seconds))
    return tuple(pictures), compare.disagreement_picture(checked.pixels, counts), text


def shown_on_page(handler, outputs, failed, message_to):
    """`handler` as the page shows it: its {name: value} with `message_to`
    emptied; or, for a user's mistake (a gr.Error), every output emptied and
    `failed` plus the message in `message_to`, where it stays until the next
    request (a toast fades and would leave the old pictures under "Error" badges)."""
    def event(settings, *args):
        try:
            result = handler(settings, *args)
        except gr.Error as error:
            emptied = {name: None for name in outputs if not name.endswith(" column")}
            return {**emptied, message_to: f"**{failed}:** {error.message}"}
        if not isinstance(result, dict):
            result = dict(zip(outputs, result))
        return {message_to: "", **result}
    event.__name__ = f"on_{handler.__name__}"
    return event


on_segment = shown_on_page(segment, SEGMENT_OUTPUTS, "Not segmented", "status")
on_compare_scales = shown_on_page(compare_scales, SCALE_OUTPUTS, "Not compared", "scale_text")


def demo_examples(settings):
    """The examples offered: the bundled synthetic scenes, then CamVid val frames."""
    return examples.list_examples(camvid=settings.camvid)


def pick_example(settings, index, set_name):
    """(image path, mask path, model set) of example `index`: the set trained
    on the example's kind of image (a CamVid frame runs the CamVid models, a
    synthetic scene the synthetic ones) when it is released, else `set_name`."""
    chosen = demo_examples(settings)[index]
    own = chosen["source"] if chosen["source"] in settings.store.sets() else set_name
    return str(chosen["image"]), (str(chosen["mask"]) if chosen["mask"] else None), own


def set_changed(settings, set_name):
    """The chosen set's card (what its models were trained on, their scores,
    the images they work on), the models the multi-scale comparison offers,
    and its columns."""
    families = settings.store.sets().get(set_name, {})
    card = model_cards.set_card(set_name, settings.store.members(set_name))
    note = "\n\n".join(filter(None, [missing_note(set_name, families), card]))
    columns = [gr.Column(visible=name in families) for name in SLOTS]
    return (note, gr.Dropdown(choices=list(families), value=next(iter(families), None)),
            *columns)


def page_setup(settings):
    """What the page shows on opening: the released sets (a new release joins
    without a restart), the examples, and the default set with its card."""
    sets = settings.store.sets()
    chosen = default_set(sets)
    shown = set_changed(settings, chosen) if chosen else (
        "No HRNet, DANet or AinnoSeg release found: publish one with `ainnoseg publish`.",
        gr.Dropdown(choices=[]), *(gr.Column() for _ in SLOTS))
    samples = [[str(example["image"])] for example in demo_examples(settings)]
    return (gr.Dropdown(choices=list(sets), value=chosen), gr.Dataset(samples=samples), *shown)


def scales_label(scales):
    return f"Multi-scale ({', '.join(f'{s:g}' for s in scales)}) + flip"


def launch_options(settings):
    """Folders outside the working directory the page may serve files from."""
    folders = (examples.EXAMPLES_DIR, settings.camvid, downloads_root())
    return {"allowed_paths": [str(path) for path in folders if path]}
