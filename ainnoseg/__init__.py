"""AinnoSeg workbench: HRNetV2 + dual attention + OCR segmentation and its baselines.

    model = ainnoseg.load("camvid/ainnoseg_w18s")
    labels = ainnoseg.segment_image(model, "frame.png")
"""

from . import jobs, models, runs
from .fast import optimize_for_inference
from .inference import PAPER_SCALES, predict, segment, segment_image
from .losses import SegmentationLoss, build_loss
from .registry import build_model, list_models
from .released import list_released, load

__version__ = "0.1.0"
__all__ = ["PAPER_SCALES", "SegmentationLoss", "build_loss", "build_model", "jobs",
           "list_models", "list_released", "load", "models", "optimize_for_inference",
           "predict", "runs", "segment", "segment_image"]
