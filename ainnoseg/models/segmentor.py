"""The contract every model keeps: images in, a dict of full-size logits out."""

import torch
import torch.nn.functional as F
from torch import nn


class Segmentor(nn.Module):
    """backbone -> head, logits bilinearly upsampled to the input size.

    Inputs of any size work: they are zero-padded on the right and bottom to a
    multiple of the backbone's stride and the logits are cropped back, never
    resized. `output_size` asks for the logits at another size (e.g. the
    original image's, when the input is a rescaled copy): they are then
    interpolated once, straight from the feature map, instead of to the input
    size first and to the wanted size after.

    `forward` returns a dict with the same keys in every mode, as torchvision's
    segmentors do: "out", the (N, num_classes, H, W) logits, and the auxiliary
    logits the model's own loss weighs (the keys of `loss_weights`, e.g. "ocr"
    for HRNet-OCR), all at the output size. Inference reads "out"; the export
    wrapper keeps "out" alone.

    Args:
        backbone: module with `stride` and `out_channels`, images -> features.
        head: module, features -> dict of logits, "out" among them.
        num_classes: classes predicted.
        loss_weights: default weight of each output in the loss, from the
            model's paper, e.g. {"out": 1.0, "ocr": 0.4} for HRNet-OCR.
    """

    in_channels = 3
    takes_output_size = True
    meta = None  # a loaded model's ModelMeta (classes, palette, config): `ainnoseg.load` sets it

    def __init__(self, backbone, head, num_classes, loss_weights):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.num_classes = num_classes
        self.stride = backbone.stride
        self.loss_weights = dict(loss_weights)

    def forward(self, images, output_size=None):
        self._check_input(images)
        height, width = images.shape[-2:]
        padded = F.pad(images, (0, -width % self.stride, 0, -height % self.stride))
        logits = self.head(self.backbone(padded))
        if output_size is None:
            size, (out_height, out_width) = padded.shape[-2:], (height, width)
        else:  # the padded input scaled as the output is, then cropped to the output
            out_height, out_width = output_size
            size = (round(padded.shape[-2] * out_height / height),
                    round(padded.shape[-1] * out_width / width))
        return {
            name: F.interpolate(value, size=size, mode="bilinear", align_corners=False)
            [..., :out_height, :out_width]
            for name, value in logits.items()
        }

    def _check_input(self, images):
        name = type(self).__name__
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise ValueError(
                f"{name} expects a batch of images shaped (N, 3, H, W), got {shape}; "
                "add the batch dimension with image.unsqueeze(0)")
        if images.shape[1] != self.in_channels:
            raise ValueError(
                f"{name} expects {self.in_channels}-channel RGB images, got "
                f"{images.shape[1]} channels in shape {tuple(images.shape)}; convert "
                "grayscale with x.expand(-1, 3, -1, -1) and drop an alpha channel "
                "with x[:, :3]")
        if not images.is_floating_point():
            raise ValueError(
                f"{name} expects float images (normalised, e.g. with ImageNet mean "
                f"and std), got dtype {images.dtype}; use x.float() / 255 and normalise")
        height, width = images.shape[-2:]
        if height < self.stride or width < self.stride:
            raise ValueError(
                f"input {height}x{width} is smaller than the network's stride "
                f"{self.stride}; resize or pad images to at least "
                f"{self.stride}x{self.stride}")
