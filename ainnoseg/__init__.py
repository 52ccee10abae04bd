"""AinnoSeg workbench: HRNetV2 + dual attention + OCR segmentation and its baselines."""

from . import models
from .fast import optimize_for_inference
from .inference import predict, segment
from .losses import SegmentationLoss, build_loss
from .registry import build_model, list_models

__version__ = "0.1.0"
__all__ = ["SegmentationLoss", "build_loss", "build_model", "list_models", "models",
           "optimize_for_inference", "predict", "segment"]
