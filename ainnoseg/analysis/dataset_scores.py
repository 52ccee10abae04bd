"""What the notebooks in notebooks/ need beyond the rest of the library: the
released models to use when the wanted ones are not released, several models
scored over a dataset in one pass, and a small own-data folder to practise on.

    names, notes = released_models({"HRNet": "synthetic/hrnetv2_w18s",
                                    "AinnoSeg": "synthetic/ainnoseg_w18s"})
    report = compare_on_dataset({label: ainnoseg.load(n) for label, n in names.items()},
                                ainnoseg.data.build_dataset("synthetic", "val"), range(20))
    write_folder_dataset("data/mine", train=24, val=8)   # images/ + masks/ + classes.txt
    start_run("train", "configs/synthetic_quick.yaml", ["data=data/mine"], "runs/mine")

Scores are fractions in [0, 1] (NaN where a class never appears).
"""

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import metrics, runs
from ..checkpoints.released import list_released
from ..checkpoints.sets import default_set, family_of, model_sets
from ..data import SyntheticScenes
from ..inference.multiscale import segment_image
from ..runs import jobs, layout
from .compare import distinct_labels
from .images import boundary_band, load_sample, sample_name


def released_models(wanted, releases=None):
    """The released names to load for `wanted` ({label: release name}).

    A wanted name that is released is kept. One that is not (a zoo still
    training) is replaced by the release of the same family (HRNet, DANet,
    AinnoSeg; by the name's model part) in the default set of
    `ainnoseg.checkpoints.sets` (synthetic once released, else CamVid); where no
    set has that family, the label is left out.
    Returns ({label: release name}, [sentences saying what was replaced or left out]).
    """
    releases = list_released() if releases is None else releases
    known = {release["name"] for release in releases}
    sets = model_sets(releases)
    fallback = sets.get(default_set(sets), {})
    chosen, notes = {}, []
    for label, name in wanted.items():
        if name in known or Path(name).is_file():
            chosen[label] = name
            continue
        family = family_of(str(name).split("/")[-1])
        substitute = fallback.get(family) or next(
            (models[family] for models in sets.values() if family in models), None)
        if substitute:
            chosen[label] = substitute
            notes.append(f"{name} is not released (yet): {label} uses {substitute}.")
        else:
            notes.append(f"{name} is not released and no {family or label} model is: "
                         f"{label} is left out.")
    return chosen, notes


def compare_on_dataset(models, dataset, indices=None, scales=(1.0,), flip=False,
                       on_image=None):
    """Several models over the same labelled images, each image predicted once.

    Args:
        models: {label: model in eval mode} with the dataset's classes.
        dataset: a labelled dataset built without transforms.
        indices: the samples (default all).
        scales, flip: test-time augmentation, as in `segment_image`.
        on_image: called as on_image(done, total) after each image.
    Returns {"scores": {label: `ainnoseg.metrics.summary`}} (counts summed over
    the images, as `ainnoseg eval` does: "mean_iou", "pixel_accuracy",
    "boundary_iou", "boundary_fscore", "class_iou", "class_boundary_iou", ...),
    "images": one row per image
    {"index", "name", "disagreement" (share of labelled pixels where the
    models' labels differ), "near_boundary" (of those, the share within the
    Boundary IoU band of a true boundary; None without disagreement)}}, the
    rows with the most disagreement first.
    """
    k, ignore = dataset.num_classes, dataset.ignore_index
    indices = list(range(len(dataset)) if indices is None else indices)
    totals = {label: metrics.empty_counts(k) for label in models}
    rows = []
    for done, index in enumerate(indices, 1):
        image, mask = load_sample(dataset, index)
        target = torch.from_numpy(mask).long()
        labels = []
        for label, model in models.items():
            pred = segment_image(model, image, scales=scales, flip=flip)
            counts = metrics.evaluation_counts(pred, target, k, ignore)
            totals[label] = [total + count for total, count in zip(totals[label], counts)]
            labels.append(pred.numpy())
        labelled = mask != ignore
        differ = (distinct_labels(labels) > 1) & labelled
        near = boundary_band(mask) & differ
        rows.append({"index": index, "name": sample_name(dataset, index),
                     "disagreement": float(differ.sum() / max(1, labelled.sum())),
                     "near_boundary": float(near.sum() / differ.sum()) if differ.any() else None})
        if on_image is not None:
            on_image(done, len(indices))
    scores = {label: metrics.summary(totals[label], dataset.class_names) for label in models}
    rows.sort(key=lambda row: (-row["disagreement"], row["index"]))
    return {"scores": scores, "images": rows}


def score_rows(scores):
    """`compare_on_dataset(...)["scores"]` as table rows in %: {"model", "mIoU",
    "Boundary IoU", "boundary F", "pixel acc."}."""
    names = {"mean_iou": "mIoU", "boundary_iou": "Boundary IoU",
             "boundary_fscore": "boundary F", "pixel_accuracy": "pixel acc."}
    return [{"model": label, **{name: round(100 * result[key], 2) for key, name in names.items()}}
            for label, result in scores.items()]


def class_rows(scores, key="class_iou"):
    """Per-class scores (`key`: "class_iou" or "class_boundary_iou") as rows
    {"class", <label>: % or None where the class never appears}."""
    labels = list(scores)
    classes = list(scores[labels[0]][key]) if labels else []
    return [{"class": name, **{label: None if math.isnan(scores[label][key][name])
                               else round(100 * scores[label][key][name], 2)
                               for label in labels}}
            for name in classes]


def write_folder_dataset(folder, train=24, val=8, size=(192, 240), seed=0):
    """A small dataset in the own-data layout, drawn from the synthetic scenes.

    Writes folder/images/{train,val}/scene_<i>.png, folder/masks/{train,val}/
    (same names; one class index per pixel, 255 ignored) and
    folder/classes.txt. Returns the folder as a Path.
    """
    folder = Path(folder)
    for split, count in (("train", train), ("val", val)):
        scenes = SyntheticScenes(split, size=size, length=count, seed=seed)
        (folder / "images" / split).mkdir(parents=True, exist_ok=True)
        (folder / "masks" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, mask = scenes[index]
            name = f"scene_{index:04d}.png"
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / "images" / split / name)
            Image.fromarray(np.asarray(mask.numpy(), np.uint8)).save(
                folder / "masks" / split / name)
    (folder / "classes.txt").write_text("\n".join(SyntheticScenes.class_names) + "\n")
    return folder


def start_run(kind, config, overrides, run_dir):
    """Launch a training ("train") or self-training ("selftrain") job in
    `run_dir` unless it already holds that run finished; a run stopped part
    way is resumed. Returns the job record, or None when the run is finished
    (a notebook run twice reads the first run's results)."""
    run_dir = Path(run_dir)
    marker = layout.SELFTRAIN_CONFIG if kind == "selftrain" else layout.CONFIG
    if not (run_dir / marker).is_file():
        run_dir.mkdir(parents=True, exist_ok=True)
        return jobs.launch(kind, config, overrides, run_dir=run_dir)
    status = runs.load_run(run_dir).status
    if status == "finished":
        return None
    if status == "running":
        raise jobs.JobError(f"{run_dir} is running already: wait for it with "
                            f"ainnoseg.runs.jobs.wait({str(run_dir)!r}) or stop it")
    return jobs.launch(kind, overrides=[], run_dir=run_dir, resume=True)
