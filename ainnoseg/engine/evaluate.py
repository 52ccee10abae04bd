"""Evaluation: predictions over a dataset, counts summed, metrics at the end.

The loop holds the only state: a confusion matrix and per-class boundary
counts. The ratios come from the pure functions of `ainnoseg.metrics`, taken
once over the whole dataset (after summing across processes when evaluating
data-parallel).
"""

import math

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Subset

from .. import metrics
from ..data.batching import equal_size_batches
from ..inference.multiscale import segment


def _rank_and_world(distributed):
    if distributed and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _check_dataset(dataset):
    missing = [name for name in ("num_classes", "class_names", "ignore_index")
               if not hasattr(dataset, name)]
    if missing:
        raise ValueError(
            f"{type(dataset).__name__} has no {', '.join(missing)}: evaluation needs a "
            "labelled dataset (ADE20K, CamVid, a folder with masks/ and classes.txt, "
            "or the synthetic scenes)")


def evaluate(model, dataset, scales=(1.0,), flip=False, mode="whole", crop_size=None,
             batch_size=1, progress=False, distributed=False, num_workers=0, amp="auto"):
    """Region and boundary metrics of `model` over a labelled dataset.

    Args:
        model: segmentor in eval mode; images go to its parameters' device.
        dataset: yields (normalised float image (3, H, W), int64 mask (H, W)),
            i.e. built with `transforms=eval_transforms()`; it names its
            `class_names`, `num_classes` and `ignore_index`.
        scales, flip, mode, crop_size, amp: passed to `ainnoseg.inference.predict`.
        batch_size: images per forward; images of different sizes are never
            stacked together, so any batch size works.
        progress: show a tqdm progress bar.
        distributed: when torch.distributed is initialised, each rank takes
            indices rank::world_size and the counts are summed over ranks, so
            every rank returns the metrics of the whole dataset.
        num_workers: DataLoader processes reading images.
    Returns:
        `ainnoseg.metrics.summary` of the summed counts, a dict of plain
        Python numbers: "pixel_accuracy", "mean_iou", "mean_class_accuracy",
        "score", "boundary_iou", "boundary_fscore" (means over classes
        present), per-class dicts "class_iou", "class_accuracy",
        "class_boundary_iou", "class_boundary_fscore" ({class name: value},
        NaN for absent classes), and "samples".
    """
    _check_dataset(dataset)
    rank, world = _rank_and_world(distributed)
    loader = DataLoader(Subset(dataset, range(rank, len(dataset), world)),
                        batch_size=batch_size, collate_fn=list, num_workers=num_workers)
    device = next(model.parameters(), torch.empty(0)).device
    k, ignore = dataset.num_classes, dataset.ignore_index
    totals = metrics.empty_counts(k, device)
    samples = torch.zeros((), dtype=torch.int64, device=device)
    if progress:
        from tqdm import tqdm
        loader = tqdm(loader, desc="evaluate", unit="batch", disable=rank != 0)
    options = dict(scales=scales, flip=flip, mode=mode, crop_size=crop_size, amp=amp)
    for batch in loader:
        for images, masks in equal_size_batches(batch):
            images, masks = images.to(device), masks.to(device)
            preds = segment(model, images, **options)
            counts = metrics.evaluation_counts(preds, masks, k, ignore)
            totals = [total + count for total, count in zip(totals, counts)]
            samples += len(images)
    if world > 1:
        for counts in (*totals, samples):
            dist.all_reduce(counts)
    return {**metrics.summary(totals, dataset.class_names), "samples": samples.item()}


SUMMARY_LINES = (
    ("pixel accuracy", "pixel_accuracy"),
    ("mean IoU", "mean_iou"),
    ("mean class accuracy", "mean_class_accuracy"),
    ("score (acc + mIoU) / 2", "score"),
    ("boundary IoU", "boundary_iou"),
    ("boundary F-score", "boundary_fscore"),
)


def _percent(value):
    return "     -" if math.isnan(value) else f"{100 * value:6.2f}"


def format_metrics(metrics_dict):
    """A per-class table (IoU, accuracy, Boundary IoU in %) and the summary lines.

    "-" marks a class absent from both the ground truth and the predictions.
    """
    names = list(metrics_dict["class_iou"])
    width = max([len("class")] + [len(name) for name in names])
    lines = [f"{'class':<{width}}   IoU %  Acc % BIoU %"]
    for name in names:
        values = [metrics_dict[key][name]
                  for key in ("class_iou", "class_accuracy", "class_boundary_iou")]
        lines.append(f"{name:<{width}}  " + " ".join(_percent(v) for v in values))
    label_width = max(len(label) for label, _ in SUMMARY_LINES)
    lines += ["", f"{'images':<{label_width}}  {metrics_dict['samples']}"]
    for label, key in SUMMARY_LINES:
        value = "-" if math.isnan(metrics_dict[key]) else f"{100 * metrics_dict[key]:.2f} %"
        lines.append(f"{label:<{label_width}}  {value}")
    return "\n".join(lines)
