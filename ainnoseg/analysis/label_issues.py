"""Which labels of a segmentation dataset are probably wrong, judged by a
model's class probabilities: the method of Lad & Mueller, "Estimating label
quality and errors in semantic segmentation data via any model" (2023,
arXiv:2309.00832), written here from the paper.

    issues = label_issues.find(model, dataset, indices=range(100))
    issues.rows[:5]                     # the images whose labels look worst, worst first
    issues.swaps[:3]                    # [{"text": "Sidewalk labelled Road: 5.1 % ...", ...}]
    issues.suspected[index]             # (H, W) the class each suspected pixel looks like, else 255
    issues.band_share()                 # how many suspected pixels lie at a boundary

The method, per pixel and per image:
- A pixel's label quality is its self-confidence: the probability the model
  gives the class it is labelled with.
- An image's score is the soft minimum of its pixels' self-confidences,
  sum_i s_i w_i / sum_i w_i with w_i = exp(-s_i / T), T = 0.1: a
  few hundred confidently contradicted pixels pull it towards 0, while the
  thin band of uncertain pixels every image has along its boundaries does not.
  Images are ranked by ascending score.
- A pixel is a suspected error by confident learning (Northcutt et al.
  2021): class k's threshold t_k is the mean probability of k over the
  pixels labelled k; of the classes whose probability reaches their
  threshold at a pixel, the most probable is where the pixel "confidently"
  belongs; it is suspected when that class is not its label. Counting
  (label, confident class) pairs over the suspected pixels gives the most
  common swaps ("Sidewalk labelled Road").

The model should not have been trained on the images it judges (the paper
uses out-of-sample probabilities): on its own training split it has partly
learned the label errors and finds fewer of them.

Thresholds need every image's probabilities, so `find` keeps them, one byte
per class and pixel (CamVid's train split: 367 x 11 x 360 x 480 bytes,
0.7 GB), and flags pixels when all are seen.
"""

from dataclasses import dataclass, field

import numpy as np

from ..viz import draw_boundaries
from .images import boundary_band, labelled_predictions, sample_name

TEMPERATURE = 0.1  # the paper's soft-minimum temperature
NOT_SUSPECTED = 255  # a pixel of `suspected` whose label looks right
LEVELS = 255  # probabilities are kept as round(p * LEVELS) in a byte
SUSPECTED_COLOR = (255, 0, 255)  # suspected pixels in `suspected_picture`


def self_confidence(probabilities, labels, ignore_index):
    """(H, W) float32: the probability of each pixel's given class in the
    (K, H, W) `probabilities`; NaN where the label is `ignore_index` or
    outside the K classes."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    if probabilities.shape[1:] != labels.shape:
        raise ValueError(f"probabilities {probabilities.shape[1:]} and labels {labels.shape} "
                         "differ in size")
    valid = (labels != ignore_index) & (labels >= 0) & (labels < probabilities.shape[0])
    picked = np.take_along_axis(probabilities, np.where(valid, labels, 0)[None], axis=0)[0]
    return np.where(valid, picked, np.nan).astype(np.float32)


def soft_minimum(scores, temperature=TEMPERATURE):
    """The paper's image score: sum(s * exp(-s / T)) / sum(exp(-s / T)) over
    the finite `scores` (self-confidences in [0, 1]); NaN when none is finite."""
    scores = np.asarray(scores, np.float64)
    scores = scores[np.isfinite(scores)]
    if scores.size == 0:
        return float("nan")
    weights = np.exp(-(scores - scores.min()) / temperature)  # shifted: no underflow
    return float((scores * weights).sum() / weights.sum())


def confident_classes(probabilities, thresholds):
    """(H, W) int64: at each pixel the most probable class among those whose
    probability reaches their threshold, or -1 where none does."""
    probabilities = np.asarray(probabilities, np.float32)
    thresholds = np.asarray(thresholds, np.float32)[:, None, None]
    above = np.where(probabilities >= thresholds, probabilities, -1.0)
    best = above.argmax(0)
    return np.where(above.max(0) >= 0, best, -1)


def suspected_pixels(probabilities, labels, thresholds, ignore_index):
    """(H, W) uint8: the confident class of each labelled pixel whose confident
    class differs from its label, `NOT_SUSPECTED` elsewhere."""
    labels = np.asarray(labels)
    confident = confident_classes(probabilities, thresholds)
    valid = (labels != ignore_index) & (labels >= 0) & (labels < len(thresholds))
    flagged = valid & (confident >= 0) & (confident != labels)
    return np.where(flagged, confident, NOT_SUSPECTED).astype(np.uint8)


@dataclass
class LabelIssues:
    """What `find` found in a labelled split.

    rows: one per image, worst label quality first: {"index", "name",
        "score" (the soft minimum, 0 worst, 1 best), "suspected" (the share
        of its labelled pixels suspected), "swap" (its most common swap in
        words, "Sidewalk labelled Road: 5.1% of Road pixels", or "")}.
    swaps: the most common (label, confident class) pairs over all suspected
        pixels: {"label", "looks like", "pixels", "share" (of the pixels
        with that label), "images", "words" ("Sidewalk labelled Road: 5.1% of
        Road pixels"), "text" (the words, then "in 12 images")}, most pixels
        first.
    suspected: {index: `suspected_pixels`}.
    thresholds: (K,) the per-class thresholds.
    band: {"suspected", "suspected_in_band", "labelled", "labelled_in_band"}
        pixel counts, the band being the Boundary IoU band of the labels.
    """

    class_names: list
    rows: list
    swaps: list
    suspected: dict = field(repr=False)
    thresholds: np.ndarray
    band: dict

    def band_share(self):
        """(share of the suspected pixels that lie at a boundary, share of all
        labelled pixels that do): the first far above the second says the
        suspected errors are mostly coarse boundaries."""
        band = self.band
        return (band["suspected_in_band"] / max(band["suspected"], 1),
                band["labelled_in_band"] / max(band["labelled"], 1))


def _kept(probabilities):
    return np.round(np.asarray(probabilities) * LEVELS).astype(np.uint8)


def find(model, dataset, indices=None, scales=(1.0,), flip=False, on_image=None,
         temperature=TEMPERATURE):
    """Rank the images of a labelled dataset by label quality and find the
    pixels whose labels `model` confidently contradicts.

    Args:
        model: a model from `ainnoseg.load` (eval mode) with the dataset's classes.
        dataset: a labelled dataset built without transforms.
        indices: the images to judge (default all).
        scales, flip: test-time augmentation, as in `segment_image`.
        on_image: called as on_image(done, total) after each image is segmented.
        temperature: the soft minimum's T.
    Returns a `LabelIssues`. Raises ValueError for a split without labels or
    a model with another number of classes, and `ainnoseg.data.DataError`
    naming the first image that cannot be read or segmented.
    """
    predictions = labelled_predictions(model, dataset, indices, scales, flip, on_image,
                                       "finding label issues", probabilities=True)
    return judge(((index, probabilities.numpy(), mask)
                  for index, probabilities, mask in predictions), dataset, temperature)


def judge(predictions, dataset, temperature=TEMPERATURE):
    """`find` on probabilities already computed: `predictions` yields
    (index, (K, H, W) class probabilities, (H, W) labels) of images of
    `dataset` (which gives the class names, the ignore index and the image
    names)."""
    num_classes, ignore = dataset.num_classes, dataset.ignore_index
    kept, sums, counts = {}, np.zeros(num_classes), np.zeros(num_classes)
    for index, probabilities, mask in predictions:
        if probabilities.shape[0] != num_classes:
            raise ValueError(f"the model predicts {probabilities.shape[0]} classes and the "
                             f"dataset has {num_classes}; use a model of this dataset")
        mask = np.asarray(mask)
        confidence = self_confidence(probabilities, mask, ignore)
        labelled = np.isfinite(confidence)
        sums += np.bincount(mask[labelled], confidence[labelled], minlength=num_classes)
        counts += np.bincount(mask[labelled], minlength=num_classes)
        kept[index] = (_kept(probabilities), mask, soft_minimum(confidence, temperature))
    # A class no pixel is labelled with is never a confident class.
    thresholds = np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)
    return _issues(dataset, kept, thresholds)


def _issues(dataset, kept, thresholds):
    """The `LabelIssues` of the kept (probabilities, labels, score) of each image."""
    names, ignore = dataset.class_names, dataset.ignore_index
    quantised = np.where(np.isfinite(thresholds), np.round(thresholds * LEVELS), LEVELS + 1)
    num_classes = len(thresholds)
    pairs = np.zeros((num_classes, num_classes), np.int64)
    pair_images = np.zeros((num_classes, num_classes), np.int64)
    labelled_per_class = np.zeros(num_classes, np.int64)
    band = dict.fromkeys(("suspected", "suspected_in_band", "labelled", "labelled_in_band"), 0)
    rows, suspected = [], {}
    for index, (probabilities, mask, score) in kept.items():
        flags = suspected_pixels(probabilities, mask, quantised, ignore)
        suspected[index] = flags
        flagged = flags != NOT_SUSPECTED
        labelled = (mask != ignore) & (mask < num_classes)
        image_pairs = _pair_counts(mask[flagged], flags[flagged], num_classes)
        pairs += image_pairs
        pair_images += image_pairs > 0
        image_labelled = np.bincount(mask[labelled], minlength=num_classes)
        labelled_per_class += image_labelled
        near = boundary_band(mask)
        band["suspected"] += int(flagged.sum())
        band["suspected_in_band"] += int((flagged & near).sum())
        band["labelled"] += int(labelled.sum())
        band["labelled_in_band"] += int((labelled & near).sum())
        top = _swaps(image_pairs, image_labelled, image_pairs > 0, names, top=1)
        rows.append({"index": index, "name": sample_name(dataset, index), "score": score,
                     "suspected": float(flagged.sum() / max(labelled.sum(), 1)),
                     "swap": top[0]["words"] if top else ""})
    rows.sort(key=lambda row: (np.isnan(row["score"]), row["score"], row["index"]))
    return LabelIssues(class_names=list(names), rows=rows,
                       swaps=_swaps(pairs, labelled_per_class, pair_images, names),
                       suspected=suspected, thresholds=thresholds, band=band)


def _pair_counts(labels, confident, num_classes):
    flat = labels.astype(np.int64) * num_classes + confident.astype(np.int64)
    return np.bincount(flat, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def _swaps(pairs, labelled_per_class, pair_images, names, top=10):
    """The `top` largest (label, confident class) counts as swap rows."""
    order = np.argsort(pairs, axis=None)[::-1][:top]
    swaps = []
    for label, looks_like in zip(*np.unravel_index(order, pairs.shape)):
        pixels = int(pairs[label, looks_like])
        if pixels == 0:
            break
        share = pixels / max(int(labelled_per_class[label]), 1)
        images = int(pair_images[label, looks_like])
        swaps.append({"label": names[label], "looks like": names[looks_like], "pixels": pixels,
                      "share": share, "images": images,
                      "words": _swap_words(names[label], names[looks_like], share),
                      "text": f"{_swap_words(names[label], names[looks_like], share)}, in "
                              f"{images} image{'' if images == 1 else 's'}"})
    return swaps


def _swap_words(label, looks_like, share):
    return f"{looks_like} labelled {label}: {share:.1%} of {label} pixels"


def suspected_picture(image, suspected):
    """A uint8 (H, W, 3) picture of `image` greyed and darkened, with the
    suspected pixels (`suspected_pixels` other than NOT_SUSPECTED) in
    SUSPECTED_COLOR and outlined in white, so a few of them stand out."""
    image, suspected = np.asarray(image), np.asarray(suspected)
    if image.shape[:2] != suspected.shape:
        raise ValueError(f"image {image.shape[:2]} and suspected pixels {suspected.shape} "
                         "differ in size")
    grey = image.astype(np.float32).mean(-1, keepdims=True) * 0.6
    picture = np.repeat(grey, 3, axis=-1).round().astype(np.uint8)
    flagged = suspected != NOT_SUSPECTED
    picture[flagged] = SUSPECTED_COLOR
    return draw_boundaries(picture, flagged.astype(np.uint8)) if flagged.any() else picture
