"""AinnoSeg workbench: HRNetV2 + dual attention + OCR segmentation and its baselines.

    model = ainnoseg.load("camvid/ainnoseg_w18s")
    labels = ainnoseg.segment_image(model, "frame.png")

The rooms: models/ (backbones, attention, heads), data/ (datasets, transforms,
Mosaic), engine/ (train, evaluate, self-train, publish), inference/ (predict,
fast, export), checkpoints/ (save, load, releases), runs/ (run directories,
jobs), analysis/ (scores, comparisons, inside the network), cli/.
"""

from . import analysis, checkpoints, data, files, inference, metrics, models, runs, threads, viz
from .checkpoints import CheckpointError, ModelMeta, list_released, load
from .config import ConfigError
from .data import DataError
from .inference import (PAPER_SCALES, QUICK_SCALES, optimize_for_inference, predict, segment,
                        segment_image)
from .losses import SegmentationLoss, build_loss
from .registry import build_model, list_models
from .runs import jobs
from .runs.jobs import JobError
from .runs.layout import RunBusy, RunDirError

__version__ = "0.1.0"
__all__ = ["CheckpointError", "ConfigError", "DataError", "JobError", "ModelMeta", "PAPER_SCALES",
           "QUICK_SCALES", "RunBusy", "RunDirError", "SegmentationLoss", "analysis", "build_loss",
           "build_model", "checkpoints", "data", "files", "inference", "jobs", "list_models",
           "list_released", "load", "metrics", "models", "optimize_for_inference", "predict",
           "runs", "segment", "segment_image", "threads", "viz"]
