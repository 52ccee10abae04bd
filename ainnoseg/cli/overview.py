"""`ainnoseg models`, `ainnoseg demo` and `ainnoseg data check`."""

import json
import time

import torch

from ..losses import build_loss
from ..registry import build_model, list_models
from . import data_issues

DEMO_MODELS = ("hrnetv2_w18s", "danet_r18", "ainnoseg_w18s")


def _parameters(model):
    return sum(p.numel() for p in model.parameters())


def run_models(args):
    """Print every registered model with its parameter count and outputs."""
    print(f"{'model':<20} {'params (M)':>10}  training outputs (loss weights)")
    for name in list_models():
        model = build_model(name, num_classes=args.num_classes)
        weights = ", ".join(f"{k} {v:g}" for k, v in model.loss_weights.items())
        print(f"{name:<20} {_parameters(model) / 1e6:10.2f}  {weights}")


def run_demo(args):
    """Segment one image with the three compared models and take a training step."""
    height, width = args.size
    torch.manual_seed(0)
    image = torch.randn(1, 3, height, width)
    labels = torch.randint(0, args.num_classes, (2, height, width))
    print(f"ainnoseg demo: random weights, {args.num_classes} classes, "
          f"a {height}x{width} image, {torch.get_num_threads()} CPU threads\n")
    for name in DEMO_MODELS:
        model = build_model(name, num_classes=args.num_classes).eval()
        with torch.no_grad():
            start = time.perf_counter()
            logits = model(image)["out"]
            seconds = time.perf_counter() - start
        prediction = logits.argmax(1)
        model.train()
        loss, terms = build_loss(model)(model(image.expand(2, -1, -1, -1)), labels)
        loss.backward()
        terms = ", ".join(f"{k} {v:.3f}" for k, v in terms.items())
        print(f"{name:<14} {_parameters(model) / 1e6:5.2f}M params | inference "
              f"{seconds:5.2f} s -> {tuple(prediction.shape)} labels | "
              f"training loss {loss.item():.3f} ({terms})")
    positions = ((height + 31) // 32 * 8) * ((width + 31) // 32 * 8)
    print(f"\nAinnoSeg's position attention covers {positions} positions at 1/4 "
          f"resolution: DANet's formula would hold a {positions}x{positions} map "
          f"({positions ** 2 * 4 / 2**30:.2f} GB in fp32); ours computes it in chunks.")
    print("Run `python benchmarks/attention.py` to measure it, `ainnoseg models` for the zoo.")


def run_data_check(args):
    """Report a dataset folder's contents and problems; exit 1 if any."""
    from ..data.check import check_dataset, format_report

    report = check_dataset(args.path)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 1 if any(split["problems"] for split in report["splits"].values()) else 0


def add_parsers(commands):
    models = commands.add_parser("models", help="list the registered models")
    models.add_argument("--num-classes", type=int, default=19)
    models.set_defaults(run=run_models)
    demo = commands.add_parser("demo", help="a short demonstration on one image")
    demo.add_argument("--num-classes", type=int, default=11)
    demo.add_argument("--size", type=int, nargs=2, default=(360, 480), metavar=("H", "W"))
    demo.set_defaults(run=run_demo)
    data = commands.add_parser("data", help="inspect datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    check = data_commands.add_parser(
        "check", help="counts, image sizes, class histogram and every problem of a dataset",
        description="Reads every image and mask of a dataset folder (ADE20K, CamVid, "
                    "images/ + masks/ + classes.txt, or a folder of images) and lists "
                    "unreadable files, images without masks, masks whose size differs from "
                    "their image and labels outside the classes. Exit status 1 if any.")
    check.add_argument("path", help="the dataset folder")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(run=run_data_check)
    data_issues.add_parser(data_commands)
