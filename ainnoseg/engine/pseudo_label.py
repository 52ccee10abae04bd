"""Pseudo-labelling an image pool with a teacher, and statistics of the labels.

A teacher's multi-scale + flip probabilities (`ainnoseg.inference.predict`)
become uint8 label PNGs, one per pool image, with 255 (ignore) wherever the
highest probability falls below a confidence threshold (ST++ and UniMatch
use up to 0.95). Each PNG is written atomically, so a killed run leaves whole
files only and a resumed run labels just the images still missing.
"""

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from .. import metrics
from ..data import IGNORE_INDEX, eval_transforms, read_mask
from ..data.batching import equal_size_batches
from ..files import atomic_write
from ..inference.multiscale import predict


def pseudo_labels(probabilities, threshold=0.0):
    """(N, K, H, W) probabilities -> (N, H, W) uint8 argmax labels, IGNORE_INDEX
    where the highest probability is below `threshold` (0 keeps every pixel)."""
    if probabilities.shape[1] > IGNORE_INDEX:
        raise ValueError(f"{probabilities.shape[1]} classes do not fit uint8 labels beside "
                         f"the ignore value {IGNORE_INDEX}; at most {IGNORE_INDEX} classes")
    confidence, labels = probabilities.max(1)
    labels = labels.to(torch.uint8)
    labels[confidence < threshold] = IGNORE_INDEX
    return labels


def label_batch(model, images, threshold=0.0, scales=(1.0,), flip=False, amp="auto",
                confidence=False):
    """Pseudo-labels of a batch of normalised images (N, 3, H, W) -> (N, H, W)
    uint8; with `confidence`, (labels, their `confidence_png` (N, H, W))."""
    probabilities = predict(model, images, scales=scales, flip=flip, amp=amp)
    labels = pseudo_labels(probabilities, threshold)
    return (labels, confidence_png(probabilities)) if confidence else labels


def confidence_png(probabilities):
    """(N, K, H, W) probabilities -> (N, H, W) uint8 highest probability x 255:
    the confidence a threshold is compared against, as a grey PNG stores it."""
    return (probabilities.max(1).values.float() * 255).round().clamp(0, 255).to(torch.uint8)


def _save_png(array, path):
    if isinstance(array, torch.Tensor):
        array = array.as_subclass(torch.Tensor).cpu().numpy()
    image = Image.fromarray(np.asarray(array, dtype=np.uint8))
    atomic_write(path, lambda handle: image.save(handle, "PNG"))


def write_png(array, path):
    """An (H, W) uint8 label map or (H, W, 3) image as a PNG, written atomically."""
    _save_png(array, path)


def write_confidence(shades, path):
    """A `confidence_png` map as a grey PNG, written atomically."""
    _save_png(shades, path)


class _NormalisedImages(Dataset):
    """(pool index, normalised float image) for DataLoader workers to prepare."""

    def __init__(self, pool):
        self.pool, self.transform = pool, eval_transforms()

    def __len__(self):
        return len(self.pool)

    def __getitem__(self, index):
        return index, self.transform(self.pool.image(index)).as_subclass(torch.Tensor)


def label_pool(model, pool, out_dir, threshold=0.0, scales=(1.0,), flip=False, amp="auto",
               batch_size=4, workers=0, indices=None, on_image=None, progress=False,
               confidence_dir=None):
    """Write out_dir/<stem>.png for each pool image in `indices` that has none yet.

    Args:
        model: the teacher in eval mode, on the device the images should go to.
        pool: an `ainnoseg.data.Pool`.
        threshold, scales, flip, amp: as in `label_batch`.
        batch_size: images per forward (images of one size only are stacked).
        workers: DataLoader processes reading and normalising images.
        indices: the pool items to label (all by default); under torchrun
            each process passes its own share.
        on_image: called as on_image(written, to_write) after each PNG.
        progress: show a tqdm bar.
        confidence_dir: where to write each image's confidence too
            (`confidence_png`, <stem>.png), so that it is read, not computed
            again, when the pseudo-labels are audited.
    Returns the number of PNGs written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    indices = range(len(pool)) if indices is None else indices
    todo = [i for i in indices if not (out_dir / f"{pool.stems[i]}.png").is_file()]
    loader = DataLoader(Subset(_NormalisedImages(pool), todo), batch_size=batch_size,
                        num_workers=workers, collate_fn=list)
    device = next(model.parameters()).device
    written = 0
    bar = tqdm(total=len(todo), desc="pseudo-label", unit="img", disable=not progress)
    for samples in loader:
        for batch_indices, images in equal_size_batches(samples):
            keep = confidence_dir is not None
            result = label_batch(model, images.to(device), threshold, scales, flip, amp, keep)
            labels, shades = result if keep else (result, [None] * len(result))
            for index, label, shade in zip(batch_indices, labels.cpu(), shades):
                if shade is not None:  # first: a written label implies its confidence
                    write_confidence(shade.cpu(),
                                     Path(confidence_dir) / f"{pool.stems[index]}.png")
                write_png(label, out_dir / f"{pool.stems[index]}.png")
                written += 1
                bar.update(1)
                if on_image is not None:
                    on_image(written, len(todo))
    bar.close()
    return written


def _read_labels(path):
    return read_mask(path).as_subclass(torch.Tensor)


def pseudo_label_stats(out_dir, stems, class_names, previous_dir=None, ground_truth=None):
    """Statistics of one round's pseudo-labels, read back from their PNGs.

    Args:
        out_dir: the folder of <stem>.png label maps.
        stems: the pool's stems, in pool order.
        class_names: the K class names (labels 0..K-1; 255 is ignore).
        previous_dir: the previous round's PNG folder, for agreement.
        ground_truth: callable pool index -> (H, W) mask, for a labelled pool.
    Returns a dict:
        images, pixels, kept_pixels: counts; kept_share = kept / all pixels,
            "kept" meaning not ignored after the threshold;
        class_pixels, class_share: {class name: kept pixels, share of kept};
        agreement: share of the pixels kept in both rounds that carry the same
            class in both (None without a previous round); agreement_pixels;
        mean_iou, pixel_accuracy, class_iou: the kept pseudo-labels scored
            against the pool's ground truth (None for an unlabeled pool);
            pixels the threshold ignored are left out, so these measure
            precision, and kept_share the coverage.
    """
    k = len(class_names)
    counts = torch.zeros(IGNORE_INDEX + 1, dtype=torch.int64)
    agree = compared = 0
    cm = torch.zeros(k, k, dtype=torch.int64)
    for index, stem in enumerate(stems):
        labels = _read_labels(Path(out_dir) / f"{stem}.png")
        counts += torch.bincount(labels.flatten().long(), minlength=IGNORE_INDEX + 1)
        kept = labels != IGNORE_INDEX
        if previous_dir is not None:
            previous = _read_labels(Path(previous_dir) / f"{stem}.png")
            both = kept & (previous != IGNORE_INDEX)
            compared += int(both.sum())
            agree += int((labels[both] == previous[both]).sum())
        if ground_truth is not None:
            cm += metrics.confusion_matrix(labels[kept], ground_truth(index)[kept], k, IGNORE_INDEX)
    pixels, kept_pixels = int(counts.sum()), int(counts[:k].sum())
    stats = {
        "images": len(stems), "pixels": pixels, "kept_pixels": kept_pixels,
        "kept_share": kept_pixels / max(pixels, 1),
        "class_pixels": {name: int(counts[c]) for c, name in enumerate(class_names)},
        "class_share": {name: int(counts[c]) / max(kept_pixels, 1)
                        for c, name in enumerate(class_names)},
        "agreement": agree / compared if previous_dir is not None and compared else None,
        "agreement_pixels": compared,
        "mean_iou": None, "pixel_accuracy": None, "class_iou": None,
    }
    if ground_truth is not None:
        stats.update(mean_iou=metrics.mean_iou(cm), pixel_accuracy=metrics.pixel_accuracy(cm),
                     class_iou=dict(zip(class_names, metrics.class_iou(cm).tolist())))
    return stats
