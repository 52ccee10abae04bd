"""What a segmentor computes for one pixel, read from one `look_inside` pass:
its top classes in every output, OCR's weights over the object regions, and
what a model lacks of the parts the other models have.

    inside = ainnoseg.analysis.inside.look_inside(model, image)
    check_point(inside, (120, 200))            # a ValueError that says what is wrong
    top_classes(inside, (120, 200), names)     # rows: output, rank, class, probability
    region_weights(inside, (120, 200))         # (K,): how the pixel gathers OCR's regions
    soft_region(inside, class_id)              # (H, W): OCR's soft region of a class
    missing_message(model)                     # "hrnetv2_w18s has no position attention, ..."

`attention_row` (in `inside`) gives where position attention looks from the
pixel, and `inside.channel_attention` the channel attention matrix.
"""

import torch

from ..models.attention import ChannelAttention, PositionAttention
from ..models.heads import OCRHead
from .inside import upsample

__all__ = ["OUTPUT_NAMES", "PARTS", "check_point", "missing_message", "missing_parts",
           "region_weights", "soft_region", "top_classes"]

# What each output key of the models means (segmentor.py: fixed keys per model).
OUTPUT_NAMES = {
    "out": "final",
    "da": "DA head",
    "ocr": "OCR regions (aux)",
    "pam": "PAM branch",
    "cam": "CAM branch",
}

# The parts this module shows, each with what a model without it cannot show.
PARTS = {
    "position attention": (PositionAttention, "map of where a pixel looks"),
    "channel attention": (ChannelAttention, "channel attention matrix"),
    "OCR": (OCRHead, "soft object regions and pixel-to-region weights"),
}


def check_point(inside, point):
    """Raise a ValueError that names the image's size when the (y, x) `point`
    lies outside the image of `inside`; return the point as two ints."""
    height, width = inside.image.shape[:2]
    y, x = int(point[0]), int(point[1])
    if not (0 <= y < height and 0 <= x < width):
        raise ValueError(f"pixel (y={y}, x={x}) lies outside the {height}x{width} image: "
                         f"y goes from 0 to {height - 1} and x from 0 to {width - 1}")
    return y, x


def top_classes(inside, point, class_names, k=3):
    """The `k` most probable classes at one pixel in each output of the model.

    Args:
        inside: `look_inside` of any model.
        point: (y, x) of the pixel.
        class_names: the model's class names.
        k: classes per output.
    Returns rows {"output": OUTPUT_NAMES' name of the output (or its key),
    "rank": 1..k, "class", "probability": the softmax of that output's
    logits}, the final output first.
    """
    y, x = check_point(inside, point)
    rows = []
    for key in sorted(inside.logits, key=lambda key: key != "out"):
        probabilities = torch.softmax(inside.logits[key][:, y, x].float(), dim=0)
        values, classes = probabilities.topk(min(k, len(probabilities)))
        for rank, (value, class_id) in enumerate(zip(values.tolist(), classes.tolist()), 1):
            rows.append({"output": OUTPUT_NAMES.get(key, key), "rank": rank,
                         "class": class_names[class_id], "probability": value})
    return rows


def region_weights(inside, point):
    """(K,): OCR's pixel-to-region weights at one pixel, the share of each
    object region's representation that the pixel gathers (summing to 1).

    Args:
        inside: `look_inside` of a model with OCR (AinnoSeg, HRNet-OCR).
        point: (y, x) of the pixel; its feature cell is the one `attention_row`
            reads, (y * h // padded_h, x * w // padded_w).
    """
    if inside.region_relation is None:
        raise ValueError("this model has no OCR (AinnoSeg and HRNet-OCR have one); "
                         "load one of those")
    y, x = check_point(inside, point)
    rows, cols = inside.region_relation.shape[-2:]
    cell_y, cell_x = y * rows // inside.padded_size[0], x * cols // inside.padded_size[1]
    return inside.region_relation[:, cell_y, cell_x].clone()


def soft_region(inside, class_id):
    """(H, W) float array: OCR's soft object region of `class_id` (the spatial
    softmax OCR averages pixels with) laid over the image, divided by its
    largest value so that 1 marks where the region is strongest."""
    if inside.regions is None:
        raise ValueError("this model has no OCR (AinnoSeg and HRNet-OCR have one); "
                         "load one of those")
    region = inside.regions[int(class_id)]
    return upsample(region / region.max().clamp_min(1e-30), inside.image.shape[:2])


def missing_parts(model):
    """The names of PARTS `model` has no module for, e.g. ["OCR"] for DANet."""
    return [name for name, (kind, _) in PARTS.items()
            if not any(isinstance(module, kind) for module in model.modules())]


def missing_message(model, name=None):
    """A sentence that says what `model` lacks and so what cannot be shown
    ("danet_r18 has no OCR, so it has no soft object regions and
    pixel-to-region weights."), or "" for a model with every part.

    `name` defaults to the model's name in its checkpoint (`model.meta`)."""
    missing = missing_parts(model)
    if not missing:
        return ""
    if name is None:
        meta = getattr(model, "meta", None)
        name = meta.config.get("model", meta.name) if meta is not None else type(model).__name__
    lacks = _spoken_list(missing, "or")
    cannot = _spoken_list([PARTS[part][1] for part in missing], "or")
    return f"{name} has no {lacks}, so it has no {cannot}."


def _spoken_list(items, word):
    """"a", "a or b", "a, b or c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {word} {items[-1]}"
