"""`ainnoseg data issues`: the images of a labelled split whose labels a
model confidently contradicts (`ainnoseg.analysis.label_issues`), written to
a folder of tables and pictures.

OUT/ holds images.csv (every image, worst label quality first), swaps.csv
(the most common label swaps), summary.json (what was judged, with what, the
per-class thresholds and how many suspected pixels lie at a boundary) and
worst/ (a picture of each of the worst images: the suspected pixels, the
label and the model's prediction side by side). A second run writes over
the files of the first; any other folder that holds files is refused.
"""

import csv
import io
import json
import shlex
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ..files import atomic_write, json_ready

SUMMARY = "summary.json"
WRITTEN_BY = "ainnoseg data issues"
TABLE_COLUMNS = ("rank", "index", "name", "score", "suspected", "swap")
SWAP_COLUMNS = ("label", "looks like", "pixels", "share", "images")


def _refuse_foreign_folder(out):
    """ValueError unless `out` is new, empty, or this command's own output."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"--out {out} is a file; choose a folder")
    if not any(out.iterdir()):
        return
    from ..runs.files import read_json

    summary = read_json(out / SUMMARY, errors=[])  # a damaged one is no summary of ours
    if not (isinstance(summary, dict) and summary.get("written_by") == WRITTEN_BY):
        raise ValueError(f"--out {out} holds files that ainnoseg data issues did not write; "
                         "nothing was written: choose a new folder")


def _csv_text(rows, columns):
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode()


def _write_text(path, data):
    atomic_write(path, lambda handle: handle.write(data))


def _write_png(path, picture):
    atomic_write(path, lambda handle: Image.fromarray(picture).save(handle, format="PNG"))


def _picture(model, dataset, index, suspected, options):
    """The suspected pixels, the label and the prediction of one image, side by side."""
    from .. import viz
    from ..analysis import label_issues
    from ..analysis.images import load_sample
    from ..inference.multiscale import segment_image

    image, mask = load_sample(dataset, index)
    prediction = segment_image(model, image, **options).numpy()
    gap = np.full((image.shape[0], 8, 3), 255, np.uint8)
    return np.concatenate([label_issues.suspected_picture(image, suspected), gap,
                           viz.overlay(image, mask, dataset.palette), gap,
                           viz.overlay(image, prediction, dataset.palette)], axis=1)


def _summary(args, issues):
    suspected_share, labelled_share = issues.band_share()
    return {"written_by": WRITTEN_BY, "command": shlex.join(["ainnoseg", *sys.argv[1:]]),
            "checkpoint": args.checkpoint, "dataset": str(args.dataset), "split": args.split,
            "images": len(issues.rows), "scales": args.scales, "flip": args.flip,
            "thresholds": dict(zip(issues.class_names, issues.thresholds.tolist())),
            "band": issues.band, "suspected_at_boundary": suspected_share,
            "labelled_at_boundary": labelled_share,
            "pictures": "worst/: suspected pixels | label | prediction"}


def run_data_issues(args):
    """Judge a labelled split's labels with a checkpoint and write OUT/."""
    from tqdm import tqdm

    from ..analysis import label_issues
    from ..checkpoints.released import load
    from ..data import build_dataset

    out = Path(args.out)
    _refuse_foreign_folder(out)
    dataset = build_dataset(args.dataset, args.split)
    model = load(args.checkpoint)
    options = {"scales": tuple(args.scales), "flip": args.flip}
    indices = range(min(args.images or len(dataset), len(dataset)))
    with tqdm(total=len(indices), desc="label issues", disable=args.quiet) as bar:
        issues = label_issues.find(model, dataset, indices, on_image=lambda *_: bar.update(1),
                                   **options)
    rows = [{"rank": rank, **row} for rank, row in enumerate(issues.rows, 1)]
    _write_text(out / "images.csv", _csv_text(rows, TABLE_COLUMNS))
    _write_text(out / "swaps.csv", _csv_text(issues.swaps, SWAP_COLUMNS))
    for old in (out / "worst").glob("[0-9][0-9][0-9]_*.png"):  # an earlier run's
        old.unlink()
    for row in rows[:args.pictures]:
        picture = _picture(model, dataset, row["index"], issues.suspected[row["index"]], options)
        name = row["name"].replace(" ", "_")
        _write_png(out / "worst" / f"{row['rank']:03d}_{name}.png", picture)
    summary = _summary(args, issues)
    _write_text(out / SUMMARY, json.dumps(json_ready(summary), indent=2).encode())
    _report(issues, summary, out)
    return 0


def _report(issues, summary, out):
    print("worst label quality (soft minimum of self-confidence, 0 worst):")
    for rank, row in enumerate(issues.rows[:5], 1):
        print(f"  {rank}. {row['name']}: {row['score']:.3f}, {row['suspected']:.1%} of its "
              f"pixels suspected{'; ' + row['swap'] if row['swap'] else ''}")
    print("most common swaps:")
    for swap in issues.swaps[:5]:
        print(f"  {swap['text']}")
    print(f"{summary['suspected_at_boundary']:.0%} of the suspected pixels lie at a boundary "
          f"(within the Boundary IoU band), against {summary['labelled_at_boundary']:.0%} of "
          "all labelled pixels")
    print(f"written to {out}/: images.csv, swaps.csv, {SUMMARY}, worst/")


def add_parser(data_commands):
    parser = data_commands.add_parser(
        "issues", help="the images whose labels a model confidently contradicts",
        description="Ranks the images of a labelled split by label quality, the soft minimum "
                    "of each pixel's self-confidence (the probability the model gives its "
                    "label), and flags the pixels whose label another class confidently "
                    "beats (per-class thresholds): Lad & Mueller 2023, 'Estimating label "
                    "quality and errors in semantic segmentation data via any model'. Judge "
                    "a split the model was not trained on where you can.")
    parser.add_argument("checkpoint", help="a .pt checkpoint or a released name such as "
                                           "camvid/hrnetv2_w18s")
    parser.add_argument("dataset", help='a labelled dataset folder or "synthetic"')
    parser.add_argument("--split", default="val", help="the split to judge (default: val)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="where the tables and pictures go (a new or empty folder, or "
                             "this command's earlier output)")
    parser.add_argument("--images", type=int, metavar="N",
                        help="judge only the first N images (default: all)")
    parser.add_argument("--pictures", type=int, default=12, metavar="N",
                        help="pictures of the N worst images (default: 12)")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0])
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_data_issues)
