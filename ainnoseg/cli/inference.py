"""`ainnoseg eval`, `ainnoseg predict` and `ainnoseg export`."""

import json
import sys
from pathlib import Path

import torch

from ..files import json_ready
from ..inference.precision import AMP_SETTINGS

# A PNG text chunk on every file predict writes: a later run may replace such
# a file, and refuses to replace any other.
PREDICT_MARK = ("Software", "ainnoseg predict")


def _inference_options(args):
    """predict() keyword arguments from the shared --scales/--flip/--mode/--crop flags."""
    if args.mode == "slide" and args.crop is None:
        raise ValueError("--mode slide needs the window size: add --crop H W, e.g. --crop 520 520")
    if args.mode == "auto" and args.command != "predict":
        raise ValueError("--mode auto is for predict; evaluate with whole or slide")
    return dict(scales=tuple(args.scales), flip=args.flip, mode=args.mode,
                crop_size=None if args.crop is None else tuple(args.crop), amp=args.amp)


def _device(args):
    return torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))


def _fast_model(model, args):
    """The checkpoint's model on the chosen device, in the fast inference configuration."""
    from ..inference.fast import optimize_for_inference

    return optimize_for_inference(model.to(_device(args)), amp=args.amp,
                                  compile=args.compile)


def _load(args):
    """`ainnoseg.load` of the checkpoint (a file or a released name) on the device."""
    from ..checkpoints.released import load

    return load(args.checkpoint, device=_device(args))


def run_eval(args):
    """Evaluate a checkpoint on a labelled dataset."""
    from ..data import DataError, build_dataset, eval_transforms
    from ..checkpoints.files import CheckpointError
    from ..engine.evaluate import evaluate, format_metrics

    options = _inference_options(args)
    dataset = build_dataset(args.dataset, args.split, transforms=eval_transforms())
    if not hasattr(dataset, "num_classes"):
        raise DataError(f"the {args.split} split of {args.dataset} has no labels to "
                        "evaluate against; pick a split with masks, e.g. --split val")
    model = _load(args)
    if len(model.meta.class_names) != dataset.num_classes:
        raise CheckpointError(
            f"checkpoint {args.checkpoint} predicts {len(model.meta.class_names)} classes "
            f"({', '.join(model.meta.class_names[:5])}...) but {dataset.num_classes} are expected "
            f"for {args.dataset}; use a checkpoint trained on this dataset, or fine-tune from "
            f"it (ainnoseg train CONFIG init_checkpoint={args.checkpoint})")
    scored = _scored_output(_fast_model(model, args), model, args.output)
    results = evaluate(scored, dataset, batch_size=args.batch_size,
                       progress=not args.quiet, **options)
    print(format_metrics(results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(json_ready(results), indent=2, allow_nan=False))
        print(f"metrics written to {args.json}")
    if args.confusion:
        _write_confusion(_scored_output(model, model, args.output), args, options)
    return 0


def _scored_output(model, segmentor, name):
    """`model` itself for "out", else its auxiliary output `name` (one of
    `segmentor`'s) in the place of "out"."""
    from ..models.auxiliary_output import AuxiliaryOutput, output_names

    if name == "out":
        return model
    if name not in output_names(segmentor):
        raise ValueError(f"--output {name}: {segmentor.meta.config.get('model', 'this model')} "
                         f"has the outputs {', '.join(output_names(segmentor))}")
    return AuxiliaryOutput(model, name)


def _write_confusion(model, args, options):
    """The split's confusion matrices (all pixels, and the Boundary IoU band's)
    to a CSV, and the largest confusions of each in words."""
    from tqdm import tqdm

    from ..analysis import confusion
    from ..data import build_dataset

    dataset = build_dataset(args.dataset, args.split)
    with tqdm(total=len(dataset), desc="confusion", disable=args.quiet) as bar:
        counts = confusion.on_dataset(model, dataset, scales=options["scales"],
                                      flip=options["flip"], on_image=lambda *_: bar.update(1))
    for part, pixels in (("all", "all pixels"), ("boundary", "boundary pixels")):
        print(f"largest confusions, {pixels}:")
        for row in confusion.largest(counts[part], dataset.class_names):
            print(f"  {row['text']}")
    path = confusion.write_csv(counts, dataset.class_names, args.confusion)
    print(f"confusion matrices written to {path}")


def _image_paths(inputs):
    """(image files, the folder each is named relative to, problems): files as
    given, folders expanded to their images, each file once."""
    from ..data.io import list_images

    found, problems, seen = [], [], set()
    for item in map(Path, inputs):
        if item.is_dir():
            images = [(path, item) for path in list_images(item)]
            if not images:
                problems.append(f"no images found in folder {item}")
        elif item.is_file():
            images = [(item, item.parent)]
        else:
            images, problems = [], problems + [f"no image or folder at {item}"]
        for path, folder in images:
            if path.resolve() not in seen:
                seen.add(path.resolve())
                found.append((path, folder))
    return found, problems


def _output_plan(images, out_dir):
    """{image: (label map path, overlay path)}: the input tree mirrored under
    `out_dir` from the folder all inputs share, so that two images never share
    an output; a name taken twice (a.jpg and a.png) keeps its suffix."""
    import itertools
    import os

    roots = [folder.resolve() for _, folder in images]
    base = Path(os.path.commonpath(roots)) if roots else Path.cwd()
    plan, taken = {}, set()
    for path, folder in images:
        target = out_dir / folder.resolve().relative_to(base)
        suffix = path.suffix.lstrip(".")
        stems = itertools.chain([path.stem, f"{path.stem}_{suffix}"],
                                (f"{path.stem}_{suffix}_{n}" for n in itertools.count(2)))
        for stem in stems:
            outputs = (target / f"{stem}.png", target / f"{stem}_overlay.png")
            if not taken & set(outputs):
                break
        taken.update(outputs)
        plan[path] = outputs
    return plan


def _refuse_writing_over_inputs(plan, out_dir, folders):
    """Outputs never replace an input, nor land among the images of an input
    folder (a second run would take them for images)."""
    inputs = {path.resolve(): path for path in plan}
    for outputs in plan.values():
        for output in outputs:
            if output.resolve() in inputs:
                raise ValueError(f"--out {out_dir} would write over the input "
                                 f"{inputs[output.resolve()]}; choose another --out folder")
    for folder in folders:
        if out_dir.resolve() == folder.resolve():
            raise ValueError(f"--out {out_dir} is an input folder: its label maps would mix "
                             "with its images (and be read as images next time); choose "
                             f"another folder, e.g. --out {folder.name}_predictions")


def _written_by_predict(path):
    """Whether the file at `path` is a label map or overlay `predict` wrote
    (it carries PREDICT_MARK), which a new run may replace."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.info.get(PREDICT_MARK[0]) == PREDICT_MARK[1]
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):  # no PNG of ours
        return False


def _refuse_replacing_other_files(plan, out_dir):
    """Outputs never replace a file predict did not write, e.g. the image
    c.png beside the input c.jpg when --out is their folder."""
    for outputs in plan.values():
        for output in outputs:
            if output.exists() and not _written_by_predict(output):
                raise ValueError(
                    f"--out {out_dir} would replace {output}, which ainnoseg predict did not "
                    "write; nothing was written: choose another --out folder, or move that "
                    "file away")


def _choose_mode(image, options, training_crop):
    """The options `segment_image` runs for --mode auto on `image`: windows of
    the training crop for images over 4 crops in area."""
    from ..inference.multiscale import choose_mode

    crop = options["crop_size"] or tuple(training_crop)
    mode, crop = choose_mode(image.shape[-2:], crop, options["mode"])
    return {**options, "mode": mode, "crop_size": crop}


def _predict_one(model, path, outputs, options):
    """Write the label map (class index per pixel) and the overlay of one image."""
    from ..data import read_image
    from ..inference.downloads import label_png, picture_png
    from ..inference.multiscale import segment_image
    from ..viz import overlay

    image = read_image(path)
    try:
        labels = segment_image(model, image, **options).numpy()
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    outputs[0].parent.mkdir(parents=True, exist_ok=True)
    outputs[0].write_bytes(label_png(labels, PREDICT_MARK))
    outputs[1].write_bytes(picture_png(overlay(image, labels, model.meta.palette), PREDICT_MARK))


def run_predict(args):
    """Segment image files; exit 1 if any could not be read or segmented."""
    from ..data import DataError

    options = _inference_options(args)
    out_dir = Path(args.out)
    images, failures = _image_paths(args.images)
    plan = _output_plan(images, out_dir)
    _refuse_writing_over_inputs(plan, out_dir,
                                [Path(item) for item in args.images if Path(item).is_dir()])
    _refuse_replacing_other_files(plan, out_dir)
    model = _fast_model(_load(args), args)
    for message in failures:
        print(f"error: {message}", file=sys.stderr)
    written = 0
    for path, outputs in plan.items():
        try:
            _predict_one(model, path, outputs, options)
        except (DataError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            failures.append(str(path))
            continue
        written += 1
        print(f"{path} -> {outputs[0]}, {outputs[1]}")
    print(f"segmented {written} image(s) into {out_dir}; {len(failures)} failed")
    return 1 if failures else 0


def _add_inference_flags(parser, default_mode="whole"):
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0], metavar="S",
                        help="resize factors whose predictions are averaged, e.g. "
                             "--scales 0.75 1.0 1.25 (default: 1.0, the image as it is)")
    parser.add_argument("--flip", action="store_true",
                        help="also predict the mirrored image and average it in")
    parser.add_argument("--mode", choices=("auto", "whole", "slide"), default=default_mode,
                        help="whole: the model sees each image at once; slide: overlapping "
                             "windows of --crop, for images too large for memory; auto: "
                             f"slide for images over 4 training crops in area (default: {default_mode})")
    parser.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"),
                        help="window size of --mode slide, e.g. the training crop 520 520")
    parser.add_argument("--device", help="cpu, cuda or cuda:1 (default: cuda if available)")
    parser.add_argument("--amp", choices=AMP_SETTINGS, default="auto",
                        help="precision: auto runs bf16 where the CPU (AMX, AVX512-BF16) or "
                             "GPU has it natively and float32 elsewhere; off is float32 "
                             "everywhere (default: auto)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model first: minutes of compiling, then "
                             "faster for many images of one size")


def _add_eval_parser(commands):
    parser = commands.add_parser(
        "eval", help="metrics of a checkpoint on a labelled dataset",
        description="Predicts every image of a dataset split with a checkpoint and prints "
                    "per-class IoU, accuracy and Boundary IoU, then pixel accuracy, mean "
                    "IoU, mean class accuracy, the ADE20K score and boundary F-score.")
    parser.add_argument("checkpoint", help="a .pt checkpoint written by training or publish, "
                                           "or a released name such as camvid/ainnoseg_w18s")
    parser.add_argument("dataset", help='a dataset folder (ADE20K, CamVid, images/ + masks/ '
                                        '+ classes.txt) or "synthetic"')
    parser.add_argument("--split", default="val", help="train, val or test (default: val)")
    _add_inference_flags(parser)
    parser.add_argument("--batch-size", type=int, default=1,
                        help="images per forward pass (default: 1)")
    parser.add_argument("--output", default="out", metavar="NAME",
                        help='score this output instead of the final one ("out"): an '
                             'auxiliary output the model\'s loss weighs, e.g. "ocr" (the '
                             'soft object regions of AinnoSeg and HRNet-OCR) or "da" '
                             '(AinnoSeg\'s dual-attention logits)')
    parser.add_argument("--json", metavar="OUT.json",
                        help="also write the metrics there (absent classes as null)")
    parser.add_argument("--confusion", metavar="OUT.csv",
                        help="also count where each class's pixels go, over all pixels and "
                             "over boundary pixels (a second pass with the same scales and "
                             "flip), print the largest confusions and write both matrices "
                             "there as rows: part, true, predicted, pixels, share")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_eval)


def _add_predict_parser(commands):
    parser = commands.add_parser(
        "predict", help="segment images with a checkpoint",
        description="For each image writes OUT/<name>.png, a label map holding one class "
                    "index per pixel, and OUT/<name>_overlay.png, the classes' colours "
                    "blended over the image, under OUT in the folders the inputs lie in "
                    "(relative to the folder they share), so that no two images share an "
                    "output; it writes over no input and no other file but its own earlier "
                    "outputs (refused before anything is written); each image's outputs are "
                    "printed. "
                    "Unreadable images are reported and skipped; the exit status is then 1.")
    parser.add_argument("checkpoint", help="a .pt checkpoint written by training or publish, "
                                           "or a released name such as camvid/ainnoseg_w18s")
    parser.add_argument("images", nargs="+", help="image files, or folders of images")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for the label maps and overlays (created if needed)")
    _add_inference_flags(parser, default_mode="auto")
    parser.set_defaults(run=run_predict)


def _export_size(args, config):
    """(height, width) to trace at and where it comes from: --size, else the
    training frames' size (`scale` of the config), else its crop, else 512x512."""
    if args.size:
        return tuple(args.size), "--size"
    for key, words in (("scale", "the training frames' size"), ("crop_size", "the training crop")):
        if config.get(key):
            return tuple(config[key]), f"{words}, {key} in its config"
    return (512, 512), "the default; --size H W sets it"


def _report_onnx(path, model, size, where):
    """Check the ONNX copy with onnxruntime and say what it takes and where its weights are."""
    from ..inference.export import free_size_exports, onnx_difference, onnx_input_shape

    shape = onnx_input_shape(path)
    free = [not isinstance(dim, int) for dim in shape]
    if free[0] and free[2] and free[3]:
        takes = f"any batch and image size (traced at {size[0]}x{size[1]}, {where})"
    else:
        why = ("its position attention's chunks are unrolled for the traced shape"
               if not free_size_exports(model) else "the exporter could not free it")
        takes = (f"input shape {shape} only, {size[0]}x{size[1]} being {where} ({why}); "
                 "--size H W exports for another size")
    weights = Path(f"{path}.data")
    stored = (f"; its weights are in {weights}, which must stay beside it"
              if weights.is_file() else "")
    difference = onnx_difference(path, model, torch.randn(2 if free[0] else 1, 3, *size))
    print(f"{path}: takes {takes}{stored}")
    print(f"{path}: onnxruntime logits differ from PyTorch's by at most {difference:.2e}")


def run_export(args):
    """Export a checkpoint to ONNX and/or TorchScript, checking ONNX with onnxruntime."""
    from ..inference.export import export_onnx, export_torchscript
    from ..checkpoints.released import load

    if not args.onnx and not args.torchscript:
        raise ValueError("say where to write: --onnx OUT.onnx and/or --torchscript OUT.pt")
    model = load(args.checkpoint)
    size, where = _export_size(args, model.meta.config)
    if args.onnx:
        export_onnx(model, args.onnx, size)
        _report_onnx(args.onnx, model, size, where)
    if args.torchscript:
        export_torchscript(model, args.torchscript, size)
        print(f"{args.torchscript}: TorchScript, traced for {size[0]}x{size[1]} images ({where})")
    return 0


def add_parsers(commands):
    _add_eval_parser(commands)
    _add_predict_parser(commands)
    export = commands.add_parser(
        "export", help="export a checkpoint to ONNX or TorchScript",
        description="Writes the model as ONNX (any batch and image size, where the "
                    "exporter allows; its weights go to OUT.onnx.data beside it) and/or "
                    "TorchScript (traced for one size). The ONNX copy is run once with "
                    "onnxruntime and compared with PyTorch.")
    export.add_argument("checkpoint", help="a .pt checkpoint written by training")
    export.add_argument("--onnx", metavar="OUT.onnx", help="write ONNX here")
    export.add_argument("--torchscript", metavar="OUT.pt", help="write traced TorchScript here")
    export.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                        help="image size to trace at, the only one TorchScript (and ONNX, "
                             "where the exporter cannot free the size) takes (default: the "
                             "training frames' size in the checkpoint's config)")
    export.set_defaults(run=run_export)
