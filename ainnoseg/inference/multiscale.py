"""Inference: softmax averaged over scales and flips, whole-image or sliding window.

One code path serves every combination: for each scale the batch is resized,
its flipped copy joins it in the same forward pass, and the softmax
probabilities of every view are resized back to the input and averaged
(the paper's multi-scale + flip testing; HRNet-OCR and mmseg do the same).
Models that take `output_size` (every ainnoseg model) interpolate their
logits once, from the feature map straight to the input's size, which saves
an interpolation and the memory of full-size logits at large scales.
"""

import contextlib
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from .precision import resolve_amp

MODES = ("whole", "slide")
# The paper's test-time scales (each also flipped).
PAPER_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
# Three scales around the image's own: the apps' multi-scale option, 3 passes
# (6 with flip) where the paper's seven take 7 (14).
QUICK_SCALES = (0.75, 1.0, 1.25)


def _resize(x, size):
    """Bilinear resize of (N, C, h, w) to `size`; antialiased when shrinking,
    untouched when the size is already right (so scale 1.0 is exact)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrinking = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                         antialias=shrinking)


def _pair(value):
    """(height, width) from an int or a pair."""
    if isinstance(value, int):
        return value, value
    if len(value) != 2:
        raise ValueError(f"expected an int or (height, width), got {value!r}")
    return int(value[0]), int(value[1])


def _check(model, images, scales, mode, crop_size, stride):
    if model.training:
        raise RuntimeError(
            "the model is in training mode (batch-norm statistics would change and "
            "dropout would draw); call model.eval() first")
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        got = (f"{tuple(images.shape)} {images.dtype}" if isinstance(images, torch.Tensor)
               else type(images).__name__)
        raise ValueError(
            f"predict expects normalised float images shaped (N, 3, H, W), got {got}; "
            "normalise with ainnoseg.data.eval_transforms() and add the batch "
            "dimension with image.unsqueeze(0)")
    if not scales or any(not s > 0 for s in scales):
        raise ValueError(
            f"scales must be positive numbers such as (0.75, 1.0, 1.25), got {scales!r}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use 'whole' or 'slide'")
    if mode == "slide" and (crop_size is None or min(_pair(crop_size)) < 1):
        raise ValueError(
            f"mode='slide' needs crop_size=(height, width) of the windows, got {crop_size!r}; "
            "use the training crop, e.g. (520, 520)")
    if stride is not None and min(_pair(stride)) < 1:
        raise ValueError(f"stride must be at least 1 pixel, got {stride!r}")


def _probabilities(model, images, output_size=None):
    """float32 softmax of the model's logits, at `output_size` if given."""
    if output_size is None:
        return model(images)["out"].float().softmax(1)
    if getattr(model, "takes_output_size", False):
        return model(images, output_size=output_size)["out"].float().softmax(1)
    return _resize(model(images)["out"].float(), output_size).softmax(1)


def _window_starts(length, window, stride):
    """Window offsets covering 0..length, the last one flush with the end."""
    steps = max(0, math.ceil((length - window) / stride)) + 1
    return [min(i * stride, length - window) for i in range(steps)]


def _slide(model, images, crop_size, stride):
    """Softmax of overlapping windows, summed and divided by each pixel's count.

    The image is zero-padded (right and bottom) to at least the crop; zero is
    the mean colour of a normalised image.
    """
    crop_h, crop_w = _pair(crop_size)
    default = (max(1, crop_h * 2 // 3), max(1, crop_w * 2 // 3))
    stride_h, stride_w = default if stride is None else _pair(stride)
    height, width = images.shape[-2:]
    padded = F.pad(images, (0, max(0, crop_w - width), 0, max(0, crop_h - height)))
    padded_h, padded_w = padded.shape[-2:]
    total, count = None, padded.new_zeros(1, 1, padded_h, padded_w)
    for top in _window_starts(padded_h, crop_h, stride_h):
        for left in _window_starts(padded_w, crop_w, stride_w):
            window = padded[..., top:top + crop_h, left:left + crop_w]
            probs = _probabilities(model, window)
            if total is None:
                total = probs.new_zeros(probs.shape[:2] + (padded_h, padded_w))
            total[..., top:top + crop_h, left:left + crop_w] += probs
            count[..., top:top + crop_h, left:left + crop_w] += 1
    return (total / count)[..., :height, :width]


def predict(model, images, scales=(1.0,), flip=False, mode="whole", crop_size=None,
            stride=None, amp="auto"):
    """Class probabilities averaged over scales and horizontal flips.

    Args:
        model: a segmentor in eval mode returning {"out": logits}; for the
            fastest inference pass `ainnoseg.optimize_for_inference(model)`.
        images: normalised float (N, 3, H, W), as `eval_transforms()` makes them.
        scales: resize factors; each view is round(H * s) x round(W * s),
            e.g. PAPER_SCALES for the paper's testing.
        flip: also predict the mirrored images (in the same forward pass)
            and average them in, flipped back.
        mode: "whole" (one forward per view) or "slide" (windows of
            `crop_size`, overlapping by `stride`).
        crop_size: (height, width) of the sliding windows.
        stride: (height, width) steps between windows; default 2/3 of the crop.
        amp: autocast precision: "auto" (bf16 where the CPU or GPU runs it
            natively, else float32), "bf16", "fp16", or "off"/False for float32.
            In half precision the views are passed channels_last, which
            gives most of `optimize_for_inference`'s speed without a copy.
    Returns:
        float32 (N, K, H, W) probabilities at the input size, summing to 1 over K.
        With scales=(1.0,), flip=False, mode="whole" and amp="off" they equal
        `model(images)["out"].softmax(1)` exactly.
    """
    _check(model, images, scales, mode, crop_size, stride)
    count, height, width = images.shape[0], images.shape[-2], images.shape[-1]
    amp_dtype = resolve_amp(amp, images.device)
    autocast = (torch.autocast(images.device.type, dtype=amp_dtype) if amp_dtype
                else contextlib.nullcontext())
    total = None
    with torch.inference_mode(), autocast:
        for scale in scales:
            scaled = _resize(images, (max(1, round(height * scale)), max(1, round(width * scale))))
            views = torch.cat([scaled, scaled.flip(-1)]) if flip else scaled
            if amp_dtype:  # half precision runs fastest on channels_last inputs
                views = views.contiguous(memory_format=torch.channels_last)
            if mode == "slide":
                probs = _slide(model, views, crop_size, stride)
            else:
                probs = _probabilities(model, views, output_size=(height, width))
            if flip:
                probs = probs[:count] + probs[count:].flip(-1)
            probs = _resize(probs, (height, width))
            total = probs if total is None else total + probs
    return total / (len(scales) * (2 if flip else 1))


def segment(model, images, **options):
    """(N, H, W) int64 class indices: the argmax of `predict(model, images, **options)`."""
    # max().indices is argmax (the first maximum on ties) at a tenth of its time on CPU
    return predict(model, images, **options).max(1).indices


def choose_mode(image_size, crop_size, mode="auto"):
    """("whole" or "slide", crop): with mode="auto", windows of the training
    crop for images over 4 crops in area, the whole image otherwise."""
    crop = _pair(crop_size)
    if mode != "auto":
        return mode, crop
    large = image_size[0] * image_size[1] > 4 * crop[0] * crop[1]
    return ("slide" if large else "whole"), crop


def segment_image(model, image, scales=(1.0,), flip=False, amp="auto", mode="auto",
                  crop_size=None, probabilities=False):
    """Class indices of one image, at its original size: the one-call inference.

        model = ainnoseg.load("camvid/ainnoseg_w18s")
        labels = ainnoseg.segment_image(model, "frame.png")

    Args:
        model: a segmentor in eval mode, e.g. from `ainnoseg.load` (or its
            `optimize_for_inference` copy); the image goes to its device.
        image: a file path, a PIL image of any mode, a uint8 NumPy array
            (H, W, 3) or a uint8 tensor (3, H, W); converted to RGB and
            normalised here.
        scales, flip, amp: as for `predict` (e.g. PAPER_SCALES and flip=True
            for the paper's testing).
        mode: "auto" slides windows of the training crop over images larger
            than 4 crops in area and takes smaller ones whole; or "whole" / "slide".
        crop_size: the windows' (height, width); default the model's training
            crop (its `meta.config["crop_size"]`), else 512 x 512.
        probabilities: also return the (K, H, W) float32 class probabilities.
    Returns:
        (H, W) int64 class indices on the CPU, or (labels, probabilities).
    Raises:
        ainnoseg.data.DataError: an image it cannot read, one without pixels,
            or (taken whole) one smaller than the model's stride at the
            smallest of `scales`; the message gives the size needed.
    """
    from ..data.io import as_image
    from ..data.transforms import eval_transforms
    from .inputs import check_size

    pixels = as_image(image)
    if crop_size is None:
        meta = getattr(model, "meta", None)
        crop_size = (meta.config if meta else {}).get("crop_size", (512, 512))
    mode, crop = choose_mode(pixels.shape[-2:], crop_size, mode)
    # Windows are padded to the crop, so only a whole image must span the stride.
    check_size(pixels.shape[-2:], getattr(model, "stride", 1) if mode == "whole" else 1,
               scales if mode == "whole" else (1.0,),
               name=str(image) if isinstance(image, (str, Path)) else "the image")
    device = next(model.parameters()).device
    batch = eval_transforms()(pixels).unsqueeze(0).to(device)
    probs = predict(model, batch, scales=scales, flip=flip, mode=mode, crop_size=crop,
                    amp=amp)[0].cpu()
    labels = probs.max(0).indices  # argmax, faster (see segment)
    return (labels, probs) if probabilities else labels
