"""Running a trained model.

    multiscale  predict, segment, segment_image: softmax averaged over scales and flips
    fast        optimize_for_inference: batch norms folded, reduced precision, channels_last
    export      ONNX and TorchScript copies, checked against PyTorch
    precision   which reduced precision a device runs natively
    inputs      images and masks a user gives the apps, checked and resized
    uploads     uploaded bytes, checked before they are decoded
    downloads   a prediction as files: label PNG, overlay PNG, scores CSV
"""

from .fast import optimize_for_inference
from .multiscale import (MODES, PAPER_SCALES, QUICK_SCALES, choose_mode, predict, segment,
                         segment_image)

# The modules export, inputs and downloads are public too:
# `from ainnoseg.inference import inputs`.
__all__ = ["MODES", "PAPER_SCALES", "QUICK_SCALES", "choose_mode", "downloads", "export",
           "inputs", "optimize_for_inference", "predict", "segment", "segment_image"]
