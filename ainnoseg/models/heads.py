"""Segmentation heads. Each returns a dict of logits at feature resolution."""

import torch
import torch.nn.functional as F
from torch import nn

from .attention import ChannelAttention, PositionAttention

OCR_PIXEL_SOURCES = ("da", "da+backbone")


def conv_bn_relu(in_channels, out_channels, kernel_size=1, bias=False):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True))


class FCNHead(nn.Module):
    """HRNetV2's own head: 1x1 conv + BN + ReLU, then a 1x1 classifier."""

    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.layers = nn.Sequential(
            conv_bn_relu(in_channels, in_channels, bias=True),
            nn.Conv2d(in_channels, num_classes, 1))

    def forward(self, features):
        return {"out": self.layers(features)}


class DualAttention(nn.Module):
    """DANet's two branches (arXiv 1809.02983, Fig. 2), without classifiers.

    Each branch is 3x3 conv -> attention (PAM or CAM) -> 3x3 conv, at
    `channels` = in_channels // 4 by default, as in DANet (2048 -> 512; for
    HRNetV2-W18-Small's 270 channels, 67). `cam_energy` is ChannelAttention's
    `energy`. Returns the two branch outputs; their sum is the refined
    feature map.
    """

    def __init__(self, in_channels, channels=0, naive_pam=False, cam_energy="sum"):
        super().__init__()
        if channels < 0:
            raise ValueError(f"dual attention channels must be positive (0: in_channels // 4), "
                             f"got {channels}")
        channels = channels or in_channels // 4
        self.out_channels = channels
        self.pam = nn.Sequential(
            conv_bn_relu(in_channels, channels, 3),
            PositionAttention(channels, naive=naive_pam),
            conv_bn_relu(channels, channels, 3))
        self.cam = nn.Sequential(
            conv_bn_relu(in_channels, channels, 3),
            ChannelAttention(energy=cam_energy),
            conv_bn_relu(channels, channels, 3))

    def forward(self, features):
        return self.pam(features), self.cam(features)


def _dropout_classifier(channels, num_classes, dropout=0.1):
    return nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(channels, num_classes, 1))


class DANetHead(nn.Module):
    """DANet's head: logits of the summed branches ("out") and of each branch.

    `da_channels` is the branches' width (0: in_channels // 4); `cam_energy`
    and `naive_pam` go to `DualAttention`.
    """

    def __init__(self, in_channels, num_classes, da_channels=0, cam_energy="sum",
                 naive_pam=False):
        super().__init__()
        self.attention = DualAttention(in_channels, da_channels, naive_pam, cam_energy)
        channels = self.attention.out_channels
        self.classify_sum = _dropout_classifier(channels, num_classes)
        self.classify_pam = _dropout_classifier(channels, num_classes)
        self.classify_cam = _dropout_classifier(channels, num_classes)

    def forward(self, features):
        pam, cam = self.attention(features)
        return {
            "out": self.classify_sum(pam + cam),
            "pam": self.classify_pam(pam),
            "cam": self.classify_cam(cam),
        }


class ObjectAttention(nn.Module):
    """OCR's pixel-to-object attention (arXiv 1909.11065, Sec. 3.3)."""

    def __init__(self, channels, key_channels):
        super().__init__()
        self.to_query = nn.Sequential(
            conv_bn_relu(channels, key_channels), conv_bn_relu(key_channels, key_channels))
        self.to_key = nn.Sequential(
            conv_bn_relu(channels, key_channels), conv_bn_relu(key_channels, key_channels))
        self.to_value = conv_bn_relu(channels, key_channels)
        self.to_output = conv_bn_relu(key_channels, channels)

    def forward(self, pixels, objects):
        batch, _, height, width = pixels.shape
        # (B, 1 head, positions, channels): N pixels attend to K object regions,
        # scaled by key_channels ** -0.5.
        query = self.to_query(pixels).flatten(2).transpose(1, 2).unsqueeze(1)
        key = self.to_key(objects).flatten(2).transpose(1, 2).unsqueeze(1)
        value = self.to_value(objects).flatten(2).transpose(1, 2).unsqueeze(1)
        context = F.scaled_dot_product_attention(query, key, value).squeeze(1)
        context = context.transpose(1, 2).reshape(batch, -1, height, width)
        return self.to_output(context)


# HRNet-OCR's widths (its code's MID_CHANNELS, KEY_CHANNELS), set for HRNetV2-W48's
# 720 channels; the AinnoSeg paper gives none, and the registered models keep them.
OCR_CHANNELS = 512


class OCRHead(nn.Module):
    """Object-contextual representations (Yuan et al. 2020) as in HRNet-OCR.

    Args:
        region_channels: channels of the features the soft object regions are
            predicted from (the "ocr" auxiliary logits).
        pixel_channels: channels of the pixel representation that is refined.
        num_classes: classes, which are also the object regions.
        mid_channels: width of the refined pixel representation; 0: OCR_CHANNELS.
        key_channels: width of the attention's queries and keys; 0: mid_channels // 2.
    """

    def __init__(self, region_channels, pixel_channels, num_classes,
                 mid_channels=0, key_channels=0):
        super().__init__()
        if mid_channels < 0 or key_channels < 0:
            raise ValueError(f"OCR widths must be positive (0: the default), got "
                             f"{mid_channels} and {key_channels}")
        mid_channels = mid_channels or OCR_CHANNELS
        key_channels = key_channels or mid_channels // 2
        self.soft_regions = nn.Sequential(
            conv_bn_relu(region_channels, region_channels, bias=True),
            nn.Conv2d(region_channels, num_classes, 1))
        self.pixels = conv_bn_relu(pixel_channels, mid_channels, 3, bias=True)
        self.object_attention = ObjectAttention(mid_channels, key_channels)
        self.fuse = nn.Sequential(
            conv_bn_relu(2 * mid_channels, mid_channels), nn.Dropout2d(0.05))
        self.classify = nn.Conv2d(mid_channels, num_classes, 1)

    def forward(self, region_features, pixel_features):
        region_logits = self.soft_regions(region_features)
        pixels = self.pixels(pixel_features)
        # Object region representations: pixels averaged under each soft region.
        weights = torch.softmax(region_logits.flatten(2).float(), dim=-1).to(pixels.dtype)
        objects = torch.bmm(weights, pixels.flatten(2).transpose(1, 2))  # (B, K, C)
        objects = objects.transpose(1, 2).unsqueeze(-1)  # (B, C, K, 1)
        context = self.object_attention(pixels, objects)
        refined = self.fuse(torch.cat([context, pixels], dim=1))
        return {"out": self.classify(refined), "ocr": region_logits}


class OCRNetHead(nn.Module):
    """HRNet-OCR: soft regions and pixel representation from the same features.
    `ocr_channels` is OCR's width (0: OCR_CHANNELS, HRNet-OCR's 512)."""

    def __init__(self, in_channels, num_classes, ocr_channels=0):
        super().__init__()
        self.ocr = OCRHead(in_channels, in_channels, num_classes, ocr_channels)

    def forward(self, features):
        return self.ocr(features, features)


class AinnoSegHead(nn.Module):
    """AinnoSeg (arXiv 2007.10591): HRNet -> dual attention -> OCR.

    The paper gives no code and no widths; our reading of its Sec. 3.1: the
    OCR pixel representation is the DA-refined feature map (the sum of the
    PAM and CAM branches) concatenated with the HRNet features it refined,
    the soft object regions come from the auxiliary head on the HRNet
    features, and the DA logits feed the loss term L_da. The DA branches keep
    DANet's width, a quarter of their input (67 channels on W18-Small's 270),
    and OCR HRNet-OCR's 512. OCR on the DA output alone ("da") is the
    literal reading; the concatenation scored higher on CamVid at equal
    budget (README, "Ablation on CamVid").
    Returns {"out": final, "ocr": soft regions, "da": dual-attention logits}.

    Args:
        da_channels: the dual-attention branches' width; 0: in_channels // 4.
        cam_energy: ChannelAttention's `energy`, "sum" (DANet) or "mean".
        ocr_pixels: OCR's pixel representation: "da+backbone", the DA output
            concatenated with the HRNet features, so OCR also sees the
            full-width features past the DA bottleneck; or "da", the DA
            output alone (checkpoints saved without the option).
        ocr_channels: OCR's width, its keys half of it; 0: OCR_CHANNELS (512),
            HRNet-OCR's, which the paper does not change.
    """

    def __init__(self, in_channels, num_classes, da_channels=0, cam_energy="sum",
                 ocr_pixels="da+backbone", ocr_channels=0, naive_pam=False):
        super().__init__()
        if ocr_pixels not in OCR_PIXEL_SOURCES:
            raise ValueError(f"ocr_pixels {ocr_pixels!r} is not one of {list(OCR_PIXEL_SOURCES)}")
        self.attention = DualAttention(in_channels, da_channels, naive_pam, cam_energy)
        channels = self.attention.out_channels
        self.ocr_pixels = ocr_pixels
        self.classify_da = _dropout_classifier(channels, num_classes)
        pixel_channels = channels + (in_channels if ocr_pixels == "da+backbone" else 0)
        self.ocr = OCRHead(in_channels, pixel_channels, num_classes, ocr_channels)

    def forward(self, features):
        pam, cam = self.attention(features)
        refined = pam + cam
        pixels = refined if self.ocr_pixels == "da" else torch.cat([refined, features], dim=1)
        logits = self.ocr(features, pixels)
        logits["da"] = self.classify_da(refined)
        return logits
