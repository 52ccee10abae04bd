"""Training and evaluation transforms on torchvision v2.

Images and masks travel together as `tv_tensors.Image` / `tv_tensors.Mask`,
so every geometric op treats masks right by itself: nearest-neighbour only,
padding with the ignore index, values never rescaled.
"""

import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from .io import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _fit_scale(height, width, scale):
    """Factor that fits (height, width) inside `scale` keeping the aspect
    ratio, long side against long side (mmseg's keep_ratio)."""
    long_edge, short_edge = max(scale), min(scale)
    return min(long_edge / max(height, width), short_edge / min(height, width))


class RandomRescale(v2.Transform):
    """Multi-scale training (mmseg's RandomResize): fit the image into
    `scale` times a ratio drawn uniformly from `ratio_range`, keeping the
    aspect ratio. The paper's base scale (520, 640) with ratios up to 2.0
    reaches its largest scale, about (1024, 1280)."""

    def __init__(self, scale, ratio_range=(0.5, 2.0)):
        super().__init__()
        self.scale = tuple(scale)
        self.ratio_range = tuple(ratio_range)

    def make_params(self, flat_inputs):
        height, width = v2.query_size(flat_inputs)
        low, high = self.ratio_range
        ratio = low + (high - low) * torch.rand(()).item()
        factor = _fit_scale(height, width, [s * ratio for s in self.scale])
        return {"size": [max(1, round(height * factor)), max(1, round(width * factor))]}

    def transform(self, inpt, params):
        return self._call_kernel(TF.resize, inpt, params["size"], antialias=True)


class FitScale(v2.Transform):
    """Deterministic resize that fits the image into `scale` (evaluation)."""

    def __init__(self, scale):
        super().__init__()
        self.scale = tuple(scale)

    def make_params(self, flat_inputs):
        height, width = v2.query_size(flat_inputs)
        factor = _fit_scale(height, width, self.scale)
        return {"size": [round(height * factor), round(width * factor)]}

    def transform(self, inpt, params):
        return self._call_kernel(TF.resize, inpt, params["size"], antialias=True)


class RandomCropAvoidingOneClass(v2.Transform):
    """Random crop of `size`, padding first where the image is smaller
    (image with 0, mask with `ignore_index`). Up to `tries` crops are drawn
    until no class covers more than `cat_max_ratio` of the crop's labelled
    pixels (mmseg's cat_max_ratio), so crops of pure road or sky are rare."""

    def __init__(self, size, cat_max_ratio=0.75, ignore_index=IGNORE_INDEX, tries=10):
        super().__init__()
        self.size = tuple(size)
        self.cat_max_ratio = cat_max_ratio
        self.ignore_index = ignore_index
        self.tries = tries

    def make_params(self, flat_inputs):
        height, width = v2.query_size(flat_inputs)
        crop_h, crop_w = self.size
        padding = [0, 0, max(0, crop_w - width), max(0, crop_h - height)]
        masks = [x for x in flat_inputs if isinstance(x, tv_tensors.Mask)]
        for _ in range(self.tries):
            top = torch.randint(max(0, height - crop_h) + 1, ()).item()
            left = torch.randint(max(0, width - crop_w) + 1, ()).item()
            if not masks or self._varied(masks[0][..., top:top + crop_h, left:left + crop_w]):
                break
        return {"padding": padding, "top": top, "left": left}

    def _varied(self, crop):
        labels = crop[crop != self.ignore_index]
        if labels.numel() == 0:
            return False
        counts = torch.bincount(labels.flatten().long())
        return counts.max().item() / labels.numel() <= self.cat_max_ratio

    def transform(self, inpt, params):
        if any(params["padding"]):
            fill = self.ignore_index if isinstance(inpt, tv_tensors.Mask) else 0
            inpt = self._call_kernel(TF.pad, inpt, params["padding"], fill=fill)
        return self._call_kernel(TF.crop, inpt, params["top"], params["left"], *self.size)


def _to_model_input():
    return [
        v2.ToDtype({tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64,
                    "others": None}, scale=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ]


def train_transforms(crop_size, scale, ratio_range=(0.5, 2.0), cat_max_ratio=0.75,
                     ignore_index=IGNORE_INDEX):
    """The paper's training pipeline: multi-scale rescale, crop, flip,
    photometric distortion, normalisation. Masks come out int64.

    Args:
        crop_size: (H, W) of the training crops, e.g. (520, 520).
        scale: (H, W) base scale the ratio multiplies, e.g. (520, 640).
        ratio_range: rescale ratios; (0.5, 2.0) reaches (1040, 1280).
    """
    return v2.Compose([
        RandomRescale(scale, ratio_range),
        RandomCropAvoidingOneClass(crop_size, cat_max_ratio, ignore_index),
        v2.RandomHorizontalFlip(),
        # mmseg's PhotoMetricDistortion ranges; no channel swaps: colour is a cue.
        v2.ColorJitter(brightness=0.125, contrast=0.5, saturation=0.5, hue=0.05),
        *_to_model_input(),
    ])


class PILToRGBImage(v2.Transform):
    """A PIL image of any mode -> an RGB `tv_tensors.Image`, converted as
    image files are (grayscale, palette, RGBA, 16-bit)."""

    _transformed_types = (PIL.Image.Image,)

    def transform(self, inpt, params):
        from .io import as_image

        return as_image(inpt)


def eval_transforms(scale=None):
    """Evaluation: PIL images to RGB tensors, optionally fit into `scale`, then normalise."""
    steps = [FitScale(scale)] if scale is not None else []
    return v2.Compose([PILToRGBImage(), *steps, *_to_model_input()])


def to_uint8(image):
    """A normalised float image (3, H, W), as the training transforms make it,
    back to a uint8 (H, W, 3) array."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pixels = (image.as_subclass(torch.Tensor).float() * std + mean) * 255
    return pixels.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
