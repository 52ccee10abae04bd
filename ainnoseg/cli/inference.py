"""`ainnoseg eval`, `ainnoseg predict` and `ainnoseg export`."""

import json
import sys
from pathlib import Path

import torch

from ..files import json_ready
from ..precision import AMP_SETTINGS


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
    from ..fast import optimize_for_inference

    return optimize_for_inference(model.to(_device(args)), amp=args.amp,
                                  compile=args.compile)


def run_eval(args):
    """Evaluate a checkpoint on a labelled dataset; exit 2 if it cannot be used."""
    from ..data import DataError, build_dataset, eval_transforms
    from ..engine.checkpoint import CheckpointError, load_model
    from ..engine.evaluate import evaluate, format_metrics

    try:
        options = _inference_options(args)
        dataset = build_dataset(args.dataset, args.split, transforms=eval_transforms())
        if not hasattr(dataset, "num_classes"):
            raise DataError(f"the {args.split} split of {args.dataset} has no labels to "
                            "evaluate against; pick a split with masks, e.g. --split val")
        model, _ = load_model(args.checkpoint, num_classes=dataset.num_classes)
        results = evaluate(_fast_model(model, args), dataset, batch_size=args.batch_size,
                           progress=not args.quiet, **options)
    except (CheckpointError, DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_metrics(results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(json_ready(results), indent=2, allow_nan=False))
        print(f"metrics written to {args.json}")
    return 0


def _image_paths(inputs):
    """Files as given, folders expanded to their images; missing paths reported."""
    from ..data.io import list_images

    paths, missing = [], []
    for item in map(Path, inputs):
        if item.is_dir():
            found = list_images(item)
            paths.extend(found)
            if not found:
                missing.append(f"no images found in folder {item}")
        elif item.is_file():
            paths.append(item)
        else:
            missing.append(f"no image or folder at {item}")
    return paths, missing


def _choose_mode(image, options, training_crop):
    """--mode auto: windows of the training crop for images over 4 crops in area."""
    if options["mode"] != "auto":
        return options
    crop = options["crop_size"] or tuple(training_crop)
    large = image.shape[-2] * image.shape[-1] > 4 * crop[0] * crop[1]
    return {**options, "mode": "slide" if large else "whole", "crop_size": crop}


def _predict_one(model, path, palette, out_dir, options, training_crop):
    """Write <stem>.png (class index per pixel) and <stem>_overlay.png for one image."""
    import numpy as np
    from PIL import Image

    from ..data import eval_transforms, read_image
    from ..inference import segment
    from ..viz import overlay

    image = read_image(path)
    options = _choose_mode(image, options, training_crop)
    batch = eval_transforms()(image).unsqueeze(0).to(next(model.parameters()).device)
    try:
        labels = segment(model, batch, **options)[0].cpu().numpy().astype(np.uint8)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    Image.fromarray(labels).save(out_dir / f"{path.stem}.png")
    Image.fromarray(overlay(image, labels, palette)).save(out_dir / f"{path.stem}_overlay.png")


def run_predict(args):
    """Segment image files; exit 1 if any could not be read or segmented."""
    from ..data import DataError
    from ..data.datasets import default_palette
    from ..engine.checkpoint import CheckpointError, load_model

    try:
        options = _inference_options(args)
        model, state = load_model(args.checkpoint)
    except (CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model = _fast_model(model, args)
    palette = state.get("palette") or default_palette(len(state["class_names"]))
    paths, failures = _image_paths(args.images)
    for message in failures:
        print(f"error: {message}", file=sys.stderr)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for path in paths:
        try:
            _predict_one(model, path, palette, out_dir, options,
                         state["config"].get("crop_size", (512, 512)))
        except (DataError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            failures.append(str(path))
            continue
        written += 1
        print(f"{path} -> {out_dir / path.stem}.png, {out_dir / path.stem}_overlay.png")
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
    parser.add_argument("checkpoint", help="a .pt checkpoint written by training")
    parser.add_argument("dataset", help='a dataset folder (ADE20K, CamVid, images/ + masks/ '
                                        '+ classes.txt) or "synthetic"')
    parser.add_argument("--split", default="val", help="train, val or test (default: val)")
    _add_inference_flags(parser)
    parser.add_argument("--batch-size", type=int, default=1,
                        help="images per forward pass (default: 1)")
    parser.add_argument("--json", metavar="OUT.json",
                        help="also write the metrics there (absent classes as null)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_eval)


def _add_predict_parser(commands):
    parser = commands.add_parser(
        "predict", help="segment images with a checkpoint",
        description="For each image writes OUT/<name>.png, a label map holding one class "
                    "index per pixel, and OUT/<name>_overlay.png, the classes' colours "
                    "blended over the image. Unreadable images are reported and skipped; "
                    "the exit status is then 1.")
    parser.add_argument("checkpoint", help="a .pt checkpoint written by training")
    parser.add_argument("images", nargs="+", help="image files, or folders of images")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for the label maps and overlays (created if needed)")
    _add_inference_flags(parser, default_mode="auto")
    parser.set_defaults(run=run_predict)


def run_export(args):
    """Export a checkpoint to ONNX and/or TorchScript, checking ONNX with onnxruntime."""
    from ..engine.checkpoint import CheckpointError, load_model
    from ..export import export_onnx, export_torchscript, onnx_difference

    if not args.onnx and not args.torchscript:
        print("error: say where to write: --onnx OUT.onnx and/or --torchscript OUT.pt",
              file=sys.stderr)
        return 2
    try:
        model, _ = load_model(args.checkpoint)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    size = tuple(args.size)
    if args.onnx:
        export_onnx(model, args.onnx, size)
        difference = onnx_difference(args.onnx, model, torch.randn(1, 3, *size))
        print(f"{args.onnx}: onnxruntime logits differ from PyTorch's by at most {difference:.2e}")
    if args.torchscript:
        export_torchscript(model, args.torchscript, size)
        print(f"{args.torchscript}: TorchScript (traced for {size[0]}x{size[1]} images)")
    return 0


def add_parsers(commands):
    _add_eval_parser(commands)
    _add_predict_parser(commands)
    export = commands.add_parser(
        "export", help="export a checkpoint to ONNX or TorchScript",
        description="Writes the model for images of one size (--size); the ONNX copy is "
                    "run once with onnxruntime and compared with PyTorch.")
    export.add_argument("checkpoint", help="a .pt checkpoint written by training")
    export.add_argument("--onnx", metavar="OUT.onnx", help="write ONNX here")
    export.add_argument("--torchscript", metavar="OUT.pt", help="write traced TorchScript here")
    export.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"),
                        help="image size the exported graph takes (default 512 512)")
    export.set_defaults(run=run_export)
