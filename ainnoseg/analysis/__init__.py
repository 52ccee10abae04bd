"""Looking at what models do.

    images          per-image scores, the worst images, confidence maps
    compare         several models on one image, with boundaries and disagreement
    compare_report  sentences that say what a comparison shows
    confusion       confusion matrices of a split, all pixels and boundary pixels
    dataset_scores  models compared over a dataset, the releases to compare
    inside          what a segmentor computes inside (branches, attention, OCR regions)
    label_issues    labels a model confidently contradicts (Lad & Mueller 2023)
    pixel           what it computes for one pixel (top classes per output, OCR weights)
    previews        what training sees: Mosaic samples and training batches
"""

from . import (compare, compare_report, confusion, dataset_scores, inside, label_issues, pixel,
               previews)
from .images import (METRICS, TABLE_NAMES, confidence_map, confidence_picture, find_checkpoints,
                     image_metrics, load_sample, sample_name, score_images, worst_images)

__all__ = ["METRICS", "TABLE_NAMES", "compare", "compare_report", "confidence_map",
           "confidence_picture", "confusion", "dataset_scores", "find_checkpoints",
           "image_metrics", "inside", "label_issues", "load_sample", "pixel", "previews",
           "sample_name", "score_images", "worst_images"]
