"""What a segmentor computes inside, on one image: HRNet's four branches, where
position attention looks from one query pixel, the channel attention matrix
and OCR's soft object regions.

    model = ainnoseg.load("synthetic/ainnoseg_w18s")
    inside = ainnoseg.analysis.inside.look_inside(model, image)     # one forward pass
    inside.branches                    # four (C, h, w) HRNet maps, 1/4 .. 1/32
    row = attention_row(inside, (120, 200))   # (h, w): where pixel (y=120, x=200) looks
    attention_on_class(inside, (120, 200), truth)  # its weight on its own class vs the class's area
    attention_by_class(model, dataset, range(10))  # the same per class, over ten images
    inside.channel_attention           # (C, C) rows of DANet's channel attention
    inside.regions                     # (K, h, w) OCR soft object regions
    inside.region_relation             # (K, h, w) each pixel's weights over those regions
    inside.logits                      # {"out": (K, H, W), "ocr": ..., "da": ...} every output

Position attention is computed for one query row only: DANet's N x N map
(N = h * w) is never built. Feature maps are cropped to the image's own area
(the network zero-pads its input to its stride), so `upsample` lays any of
them over the image. Models without a part (HRNetV2 has no attention, DANet
no HRNet branches) leave that field None.
"""

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..data import eval_transforms
from ..data.io import as_image
from ..models.attention import ChannelAttention, PositionAttention
from ..models.backbones import HRNetV2
from ..models.heads import ObjectAttention, OCRHead


@dataclass(repr=False)
class Inside:
    """One forward pass, taken apart (tensors float32 on the CPU).

    image: uint8 (H, W, 3); labels: (H, W) int64 prediction.
    branches: HRNet's four branch outputs (C_i, h_i, w_i), or None.
    position_input: the (C, h, w) features position attention reads, or None.
    channel_attention: (C, C) softmax rows of the channel attention, or None.
    regions: (K, h, w) OCR soft object regions (each class's spatial softmax,
        the weights OCR averages pixels with), or None.
    region_relation: (K, h, w) OCR's pixel-to-region attention over the
        padded input's feature map (as position_input): at each pixel, the
        softmax weights with which it gathers the K object regions'
        representations (summing to 1 over K), or None.
    logits: {output name: (K, H, W) logits} for every output of the model
        ("out" and its auxiliary heads', e.g. "ocr" and "da"), at the image's size.
    padded_size: the (height, width) the network saw after zero-padding.
    """

    image: np.ndarray
    labels: np.ndarray
    padded_size: tuple
    branches: list | None = None
    position_input: torch.Tensor | None = None
    channel_attention: torch.Tensor | None = None
    regions: torch.Tensor | None = None
    region_relation: torch.Tensor | None = None
    logits: dict = field(default_factory=dict)
    position_module: PositionAttention | None = field(default=None, repr=False)

    def __repr__(self):
        """One line per part with its shape; the tensors themselves are long."""
        def shape(tensor):
            return "x".join(str(size) for size in tensor.shape)

        lines = [f"image {shape(self.image)} (padded to {self.padded_size[0]}x"
                 f"{self.padded_size[1]}), labels {shape(self.labels)}"]
        if self.branches is not None:
            lines.append("branches " + ", ".join(shape(b) for b in self.branches))
        parts = ("position_input", "channel_attention", "regions", "region_relation")
        for name in parts:
            value = getattr(self, name)
            if value is not None:
                lines.append(f"{name} {shape(value)}")
        if self.logits:
            lines.append("logits " + ", ".join(self.logits))
        absent = [name for name in ("branches", *parts) if getattr(self, name) is None]
        if absent:
            lines.append("none: " + ", ".join(absent))
        return "Inside(\n  " + ",\n  ".join(lines) + ")"


def _first(model, kind):
    return next((module for module in model.modules() if isinstance(module, kind)), None)


def _crop(features, image_size, padded_size):
    """Feature maps (..., h, w) of the padded input cut to the image's own area."""
    height, width = features.shape[-2:]
    rows = -(-image_size[0] * height // padded_size[0])
    cols = -(-image_size[1] * width // padded_size[1])
    return features[..., :rows, :cols]


def channel_attention_matrix(features, energy="sum"):
    """(C, C) channel attention of DANet's CAM for (C, h, w) features: softmax
    over each row of max(energy) - energy, energy = F F^T, divided by the
    h * w positions for energy="mean" (ChannelAttention's `energy`)."""
    flat = features.flatten(1).float()
    energies = flat @ flat.T
    if energy == "mean":
        energies = energies / flat.shape[1]
    return torch.softmax(energies.amax(-1, keepdim=True) - energies, dim=-1)


def attention_sharpness(attention):
    """How peaked the rows of an attention matrix (rows summing to 1) are:
    {"max": the mean of each row's largest weight, "entropy": the mean row
    entropy in nats, "uniform_entropy": ln(row length), a flat row's}."""
    attention = attention.float()
    entropy = -(attention * attention.clamp_min(1e-30).log()).sum(-1)
    return {"max": attention.amax(-1).mean().item(), "entropy": entropy.mean().item(),
            "uniform_entropy": float(np.log(attention.shape[-1]))}


# What look_inside keeps of each part: (module type, its submodule to hook, what to keep).
_PARTS = {"branches": (HRNetV2, "body", "output"),
          "position": (PositionAttention, None, "input"),
          "channel": (ChannelAttention, None, "input"),
          "regions": (OCRHead, "soft_regions", "output"),
          "relation": (ObjectAttention, None, "inputs")}


def _hook_parts(model, captured):
    """Forward hooks that keep, in `captured`, what each part of `model` in
    `_PARTS` computes the first time it runs; returns the hooks."""
    def keep(name, what):
        def hook(module, inputs, output):
            kept = {"output": output, "input": inputs[0], "inputs": inputs}[what]
            captured.setdefault(name, kept)
        return hook

    hooks = []
    for name, (kind, child, what) in _PARTS.items():
        module = _first(model, kind)
        if module is not None:
            target = getattr(module, child) if child else module
            hooks.append(target.register_forward_hook(keep(name, what)))
    return hooks


def region_relation(module, pixels, objects):
    """(K, h, w): OCR's pixel-to-region attention of an `ObjectAttention`
    `module` on its inputs, `pixels` (1, C, h, w) and `objects` (1, C, K, 1):
    at each pixel the softmax over the K regions of query . key / sqrt(channels),
    the weights scaled_dot_product_attention applies, from the module's own
    query and key convolutions."""
    with torch.inference_mode():
        query = module.to_query(pixels)[0].flatten(1).float()  # (Ck, N)
        key = module.to_key(objects)[0].flatten(1).float()     # (Ck, K)
        scores = key.T @ query * query.shape[0] ** -0.5        # (K, N)
        return torch.softmax(scores, dim=0).view(-1, *pixels.shape[-2:]).cpu()


def look_inside(model, image):
    """Run `model` (eval mode) once on `image` and keep what its parts compute.

    Args:
        model: a segmentor from `ainnoseg.load` or `ainnoseg.build_model`.
        image: a path, PIL image, uint8 (H, W, 3) array or uint8 (3, H, W) tensor.
    Returns an `Inside`; float32 throughout (no autocast), so the attention
    rows are exactly the model's.
    """
    if model.training:
        raise RuntimeError("call model.eval() first: training mode changes batch-norm statistics")
    pixels = as_image(image)  # a (3, H, W) uint8 tv_tensors.Image, converted as files are
    image = pixels.as_subclass(torch.Tensor).permute(1, 2, 0).numpy()
    captured = {}
    hooks = _hook_parts(model, captured)
    device = next(model.parameters()).device
    tensor = eval_transforms()(pixels).as_subclass(torch.Tensor)
    try:
        with torch.inference_mode():
            outputs = model(tensor[None].to(device))
    finally:
        for hook in hooks:
            hook.remove()
    stride = getattr(model, "stride", 1)
    size = image.shape[:2]
    padded = (-(-size[0] // stride) * stride, -(-size[1] // stride) * stride)
    inside = Inside(image=image, labels=outputs["out"].argmax(1)[0].cpu().numpy(),
                    padded_size=padded, position_module=_first(model, PositionAttention),
                    logits={name: value[0].float().cpu() for name, value in outputs.items()})
    if "branches" in captured:
        inside.branches = [_crop(b[0].float().cpu(), size, padded) for b in captured["branches"]]
    if "position" in captured:
        inside.position_input = captured["position"][0].float().cpu()
    if "channel" in captured:
        inside.channel_attention = channel_attention_matrix(
            captured["channel"][0].cpu(), _first(model, ChannelAttention).energy)
    if "regions" in captured:
        logits = captured["regions"][0].float().cpu()
        weights = torch.softmax(logits.flatten(1), dim=-1).view_as(logits)
        inside.regions = _crop(weights, size, padded)
    if "relation" in captured:
        inside.region_relation = region_relation(_first(model, ObjectAttention),
                                                 *captured["relation"])
    return inside


def attention_row(inside, point):
    """Where position attention looks from one query pixel: an (h, w) map.

    Args:
        inside: `look_inside` of a model with position attention.
        point: (y, x) of the query pixel in the image.
    Returns the query's softmax row over every key position (summing to 1
    over the padded map), cropped to the image's area: one row of DANet's
    N x N attention, computed as q_i . K with the model's own 1x1 convolutions.
    """
    module = inside.position_module
    if module is None or inside.position_input is None:
        raise ValueError("this model has no position attention (DANet, HRNet + DA and "
                         "AinnoSeg have one); load one of those")
    height, width = inside.image.shape[:2]
    y, x = int(point[0]), int(point[1])
    if not (0 <= y < height and 0 <= x < width):
        raise ValueError(f"the query pixel {(y, x)} lies outside the {height}x{width} image")
    features = inside.position_input.to(module.query_conv.weight.device)[None]
    rows, cols = features.shape[-2:]
    fy, fx = y * rows // inside.padded_size[0], x * cols // inside.padded_size[1]
    with torch.inference_mode():
        query = module.query_conv(features)[0, :, fy, fx]  # (Cq,)
        keys = module.key_conv(features)[0].flatten(1)      # (Cq, N)
        row = torch.softmax((query @ keys).float(), dim=-1).view(rows, cols).cpu()
    return _crop(row, (height, width), inside.padded_size)


def class_shares(labels, grid_size, padded_size, num_classes):
    """(K, h, w): the share of each feature cell's image pixels that carry
    each class, for an (H, W) label map and a feature map of `grid_size`
    (h, w) over the padded input (`attention_row`'s cells: image pixel (y, x)
    falls in cell (y * h // padded_h, x * w // padded_w)). Ignored and other
    labels count in a cell's pixels but in no class."""
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    height, width = labels.shape
    rows, cols = grid_size
    cell_y = torch.arange(height) * rows // padded_size[0]
    cell_x = torch.arange(width) * cols // padded_size[1]
    cells = (cell_y[:, None] * cols + cell_x[None, :]).flatten()
    valid = (labels.flatten() >= 0) & (labels.flatten() < num_classes)
    counts = torch.zeros(num_classes, rows * cols)
    counts.index_put_((labels.flatten()[valid], cells[valid]), torch.ones(int(valid.sum())),
                      accumulate=True)
    pixels = torch.bincount(cells, minlength=rows * cols).clamp_min(1)
    return (counts / pixels).view(num_classes, rows, cols)


def attention_on_class(inside, point, labels, class_id=None):
    """How much of one query pixel's position attention lands on its own class.

    Args:
        inside: `look_inside` of a model with position attention.
        point: (y, x) of the query pixel.
        labels: (H, W) class per image pixel (the truth, or `inside.labels`).
        class_id: the class to measure; default the label at `point`.
    Returns {"class": class_id, "mass": the share of the row's weight (over
    the image's cells) on pixels of that class, "area": the share a flat row
    would put there (the class's mean share of the cells), "lift": mass /
    area}: a lift near 1 is attention blind to the class, well above 1
    attention that gathers from the query's own class.
    """
    labels = np.asarray(labels)
    y, x = int(point[0]), int(point[1])
    class_id = int(labels[y, x]) if class_id is None else int(class_id)
    row = attention_row(inside, (y, x))
    feature_size = inside.position_input.shape[-2:]
    shares = class_shares(labels, feature_size, inside.padded_size, class_id + 1)[class_id]
    shares = _crop(shares, labels.shape, inside.padded_size)
    mass = (row * shares).sum().item() / row.sum().item()
    area = shares.mean().item()
    return {"class": class_id, "mass": mass, "area": area,
            "lift": mass / area if area > 0 else float("nan")}


def attention_by_class(model, dataset, indices):
    """Whether a model's position attention follows classes, over many images.

    Args:
        model: a model with position attention, in eval mode.
        dataset: a labelled dataset built without transforms, with the
            model's classes.
        indices: the images; in each, one query per class present, at the
            pixel `point_of` picks.
    Returns one row per class that had a query: {"class", "queries", "mass"
    and "area" (`attention_on_class`'s, averaged over the queries), "lift"
    (mass / area of those averages), "peak" (the mean of each row's largest
    weight divided by a flat row's: 1 for attention spread evenly)}.
    """
    from .images import load_sample

    found = {}
    for index in indices:
        image, truth = load_sample(dataset, index)
        inside = look_inside(model, image)
        for class_id in np.unique(truth):
            point = point_of(truth, class_id) if class_id < dataset.num_classes else None
            if point is None:
                continue
            share = attention_on_class(inside, point, truth, class_id)
            row = attention_row(inside, point)
            share["peak"] = (row.max() / row.mean()).item()
            found.setdefault(int(class_id), []).append(share)
    rows = []
    for class_id, shares in sorted(found.items()):
        mass, area, peak = (float(np.mean([s[key] for s in shares]))
                            for key in ("mass", "area", "peak"))
        rows.append({"class": dataset.class_names[class_id], "queries": len(shares),
                     "mass": mass, "area": area, "lift": mass / area if area > 0 else float("nan"),
                     "peak": peak})
    return rows


def upsample(feature_map, size):
    """An (h, w) map bilinearly resized to `size` (H, W), as a float numpy array."""
    values = torch.as_tensor(feature_map, dtype=torch.float32)[None, None]
    return F.interpolate(values, size=tuple(size), mode="bilinear",
                         align_corners=False)[0, 0].numpy()


def feature_picture(features):
    """A (C, h, w) feature map as a uint8 (h, w, 3) picture: its three principal
    components as red, green and blue (each stretched between its 1st and 99th
    percentile), so regions the features tell apart get different colours."""
    flat = torch.as_tensor(features, dtype=torch.float32).flatten(1)
    centred = flat - flat.mean(1, keepdim=True)
    _, _, vectors = torch.linalg.svd(centred.T, full_matrices=False)
    components = (vectors[:3] @ centred).T  # (h * w, up to 3)
    if components.shape[1] < 3:
        components = F.pad(components, (0, 3 - components.shape[1]))
    low = torch.quantile(components, 0.01, dim=0)
    high = torch.quantile(components, 0.99, dim=0)
    scaled = ((components - low) / (high - low).clamp(min=1e-8)).clamp(0, 1)
    height, width = features.shape[-2:]
    return (scaled * 255).round().to(torch.uint8).view(height, width, 3).numpy()


def point_of(labels, class_id):
    """(y, x) of the pixel of `class_id` in an (H, W) label map that lies
    deepest inside its region (farthest from another label or the image
    edge), a good query pixel for `attention_row`; None where the class is
    absent. Of equally deep pixels (all along the middle of a pole), the one
    nearest their centre, not the first row's."""
    from scipy import ndimage

    inside = np.asarray(labels) == class_id
    if not inside.any():
        return None
    depth = ndimage.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1]
    deepest = np.argwhere(depth == depth.max())
    y, x = deepest[np.argmin(((deepest - deepest.mean(0)) ** 2).sum(1))]
    return int(y), int(x)
