"""What the rounds of a self-training run did, read from its run directory
(layout: `ainnoseg.engine.selftrain`): per-round scores, a round-by-class IoU
table with deltas against the teacher, pseudo-label statistics, the pool's
images with each round's pseudo-label, and the pool images ranked by how much
the rounds disagree on them.

    run = ainnoseg.runs.load_run("runs/selftrain_synthetic_quick")
    rows = round_table(run.rounds)
    cells = class_iou_cells(run.rounds)          # round x class, with deltas
    ranking = disagreement_ranking(run.path)     # pool images, most disputed first
    shades = teacher_confidence(run.path, 1, ranking[0]["stem"])   # stored, not computed

The tables take the rounds `ainnoseg.runs.load_run` read; the rest reads the
run directory now, so all of it works on a run in progress (rounds not
reached yet are left out or None). Scores are fractions.
"""

from pathlib import Path

import numpy as np
import torch

from ..config import load_saved_config
from ..data import IGNORE_INDEX, build_dataset, open_pool, read_image, read_mask
from . import layout
from .files import read_json
from .tables import format_seconds

VAL_COLUMNS = {"mean_iou": "mIoU", "pixel_accuracy": "pixel acc.",
               "boundary_iou": "Boundary IoU", "score": "score"}


def is_selftrain_run(run_dir):
    return config_file(run_dir).is_file()


def config_file(run_dir):
    """The self-training run's config file."""
    return Path(run_dir) / layout.SELFTRAIN_CONFIG


def run_config(run_dir):
    """The run's config (its selftrain.yaml)."""
    return load_saved_config(config_file(run_dir))


def pseudo_label_folders(run_dir):
    """The pseudo-label folders of the rounds present, by round: what a page's
    cache of them depends on."""
    folders = (folder / layout.PSEUDO for folder in layout.round_dirs(run_dir).values())
    return [folder for folder in folders if folder.is_dir()]


def local_path(path, run_dir):
    """A checkpoint path a run recorded, found again: as written when it
    exists, else its part from round_<r>/ on inside `run_dir` (the run was
    started from another working directory, or moved)."""
    path = Path(path)
    if path.is_file():
        return path
    for i, part in enumerate(path.parts):
        if part.startswith(layout.ROUND_PREFIX):
            candidate = Path(run_dir, *path.parts[i:])
            if candidate.is_file():
                return candidate
    return path


def round_table(rounds):
    """One row per round of `ainnoseg.runs.load_run(path).rounds`: "round",
    its val "mIoU", "pixel acc.", "Boundary IoU" and "score" (None until
    evaluated), its pseudo-labels' "kept" share, "agreement" with the
    previous round's and "pseudo mIoU" against the pool's labels (where the
    pool has them), and the "time" it worked."""
    rows = []
    for result in rounds:
        val, pseudo = result.get("val") or {}, result.get("pseudo") or {}
        rows.append({"round": result["round"],
                     **{name: val.get(key) for key, name in VAL_COLUMNS.items()},
                     "kept": pseudo.get("kept_share"), "agreement": pseudo.get("agreement"),
                     "pseudo mIoU": pseudo.get("mean_iou"),
                     "time": format_seconds(result.get("seconds"))})
    return rows


def class_iou_cells(rounds):
    """Val IoU of every class in every evaluated round of `load_run(path).rounds`,
    and its change against round 0 (the teacher): rows {"round", "class",
    "iou", "delta"} in round then class order; None where a class is absent."""
    cells, teacher = [], {}
    for result in rounds:
        class_iou = result.get("class_iou")
        if not class_iou:
            continue
        teacher = class_iou if result["round"] == 0 else teacher
        for name, iou in class_iou.items():
            before = teacher.get(name)
            delta = iou - before if iou is not None and before is not None else None
            cells.append({"round": result["round"], "class": name, "iou": iou, "delta": delta})
    return cells


def pseudo_label_cells(run_dir):
    """Each round's pseudo-label class histogram: rows {"round", "class",
    "share" (of kept pixels), "pixels"}."""
    cells = []
    for index, folder in layout.round_dirs(run_dir).items():
        stats = read_json(folder / layout.PSEUDO_STATS)
        if stats:
            cells += [{"round": index, "class": name, "share": stats["class_share"][name],
                       "pixels": pixels} for name, pixels in stats["class_pixels"].items()]
    return cells


def round_checkpoints(rounds, run_dir):
    """The checkpoints the rounds of `load_run(run_dir).rounds` evaluated and
    passed on, to compare them: {"round 0 (teacher)": path, "round r
    (student)": path} for every evaluated round."""
    found = {}
    for result in rounds:
        if result.get("checkpoint"):
            index = result["round"]
            label = "round 0 (teacher)" if index == 0 else f"round {index} (student)"
            found[label] = local_path(result["checkpoint"], run_dir)
    return found


def round_teacher(run_dir, round_index):
    """How round `round_index` was pseudo-labelled: {"checkpoint", "scales",
    "flip", "threshold"}, or None before its pseudo-labels are done."""
    stats = read_json(layout.round_dir(run_dir, round_index) / layout.PSEUDO_STATS)
    if not stats:
        return None
    return {"checkpoint": local_path(stats["teacher"], run_dir),
            "scales": tuple(stats["scales"]), "flip": stats["flip"],
            "threshold": stats["threshold"]}


def run_classes(run_dir):
    """(class names, palette) of the run's labelled data, which its
    pseudo-labels use."""
    config = run_config(run_dir)
    dataset = build_dataset(config.data, config.train_split)
    return list(dataset.class_names), [tuple(color) for color in dataset.palette]


def open_run_pool(run_dir):
    """The run's unlabeled pool (`ainnoseg.data.Pool`), as its
    config names it."""
    config = run_config(run_dir)
    return open_pool(config.unlabeled or config.data, config.unlabeled_split,
                     config.unlabeled_limit)


def pool_sample(pool, run_dir, stem):
    """(uint8 image (H, W, 3), ground-truth mask or None) of pool image `stem`."""
    index = pool.stems.index(stem)
    file = pool.files[index] or Path(run_dir) / "pool" / f"{stem}.png"
    image = read_image(file) if Path(file).is_file() else pool.image(index)
    mask = pool.mask(index).to(torch.uint8).numpy() if pool.labelled else None
    return image.as_subclass(torch.Tensor).permute(1, 2, 0).numpy(), mask


def pseudo_labels(run_dir, stem):
    """{round: (H, W) uint8 pseudo-label of pool image `stem`} for the rounds
    that labelled it (255 = ignored by the confidence threshold)."""
    labels = {}
    for index, folder in layout.round_dirs(run_dir).items():
        path = folder / layout.PSEUDO / f"{stem}.png"
        if path.is_file():
            labels[index] = read_mask(path).as_subclass(torch.Tensor).numpy()
    return labels


def teacher_confidence(run_dir, round_index, stem):
    """The (H, W) float confidence (highest class probability, to 1/255) of
    round `round_index`'s teacher on pool image `stem`, as it was stored when
    the pool was pseudo-labelled; None where it was not stored (runs made
    before confidences were kept: `analysis.confidence_map` computes it)."""
    path = layout.round_dir(run_dir, round_index) / layout.CONFIDENCE / f"{stem}.png"
    if not path.is_file():
        return None
    return read_mask(path).as_subclass(torch.Tensor).numpy().astype(np.float32) / 255


def disagreement(labels):
    """(share of pixels the rounds disagree on, mean ignored share) of one
    image's pseudo-labels, a list of (H, W) arrays. A pixel counts where at
    least two rounds kept it, and disagrees where their classes differ;
    None with fewer than two rounds or no such pixel."""
    stack = np.stack([np.asarray(label) for label in labels]).astype(np.int16)
    kept = stack != IGNORE_INDEX
    ignored = float((~kept).mean())
    compared = kept.sum(0) >= 2
    if len(labels) < 2 or not compared.any():
        return None, ignored
    lowest = np.where(kept, stack, IGNORE_INDEX + 1).min(0)
    highest = np.where(kept, stack, -1).max(0)
    return float((compared & (lowest != highest)).sum() / compared.sum()), ignored


def disagreement_ranking(run_dir):
    """The pseudo-labelled pool images, those the rounds disagree on most
    first: rows {"stem", "disagreement", "ignored_share", "rounds"}; ties
    (and runs with one round) by the share the threshold ignored."""
    stems = sorted({path.stem for folder in layout.round_dirs(run_dir).values()
                    for path in (folder / layout.PSEUDO).glob("*.png")})
    rows = []
    for stem in stems:
        labels = pseudo_labels(run_dir, stem)
        share, ignored = disagreement(list(labels.values()))
        rows.append({"stem": stem, "disagreement": share, "ignored_share": ignored,
                     "rounds": len(labels)})
    return sorted(rows, key=lambda row: (-(row["disagreement"] or 0.0), -row["ignored_share"],
                                         row["stem"]))
