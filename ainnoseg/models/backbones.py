"""Backbones: HRNetV2 from timm, dilated ResNet from torchvision."""

import timm
import torch
import torch.nn.functional as F
import torchvision
from torch import nn


def _load_with_weights(create, description):
    """Run a constructor that may download ImageNet weights; explain a failure."""
    try:
        return create()
    except Exception as error:  # urllib, huggingface_hub and OSError all end here
        raise RuntimeError(
            f"could not load the ImageNet weights of {description}: {error}\n"
            "The weights are downloaded on first use, which needs internet access "
            "(or a filled torch hub / Hugging Face cache). Build the model with "
            "pretrained=False (the default) to start from random weights."
        ) from error


class HRNetV2(nn.Module):
    """HRNet's four branches, upsampled to 1/4 and concatenated (HRNetV2).

    Sun et al. 2019, arXiv 1904.04514: the segmentation representation has
    15 * width channels (W18 -> 270, W48 -> 720) at 1/4 of the input size.

    Args:
        variant: a timm HRNet name, e.g. "hrnet_w48" or "hrnet_w18_small_v2".
        pretrained: start from timm's ImageNet weights.
    """

    stride = 32  # the lowest-resolution branch; inputs must divide by it

    def __init__(self, variant, pretrained=False):
        super().__init__()
        self.body = _load_with_weights(
            lambda: timm.create_model(
                variant, pretrained=pretrained, features_only=True,
                feature_location="", out_indices=(1, 2, 3, 4)),
            f"timm's {variant}")
        self.out_channels = sum(self.body.feature_info.channels())

    def forward(self, images):
        branches = self.body(images)
        size = branches[0].shape[-2:]
        upsampled = [branches[0]] + [
            F.interpolate(branch, size=size, mode="bilinear", align_corners=False)
            for branch in branches[1:]]
        return torch.cat(upsampled, dim=1)


def _dilate(layer, dilation):
    """Replace a ResNet stage's stride 2 with dilation, as DeepLab and DANet do.

    torchvision's `replace_stride_with_dilation` refuses BasicBlock (ResNet-18),
    so the stage is changed in place: the strided conv keeps half the dilation
    and every later 3x3 conv gets the full one (the same result torchvision
    gives for Bottleneck).
    """
    for module in layer.modules():
        if not isinstance(module, nn.Conv2d):
            continue
        if module.stride == (2, 2):
            module.stride = (1, 1)
            if module.kernel_size == (3, 3):
                module.dilation = module.padding = (dilation // 2, dilation // 2)
        elif module.kernel_size == (3, 3):
            module.dilation = module.padding = (dilation, dilation)


class DilatedResNet(nn.Module):
    """torchvision ResNet with output stride 8 (layer3 dilated 2, layer4 4).

    Args:
        depth: 18, 50 or 101.
        pretrained: start from torchvision's ImageNet weights.
    """

    stride = 8

    def __init__(self, depth, pretrained=False):
        super().__init__()
        weights = "DEFAULT" if pretrained else None
        resnet = _load_with_weights(
            lambda: torchvision.models.get_model(f"resnet{depth}", weights=weights),
            f"torchvision's resnet{depth}")
        _dilate(resnet.layer3, 2)
        _dilate(resnet.layer4, 4)
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layers = nn.Sequential(resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
        self.out_channels = resnet.fc.in_features

    def forward(self, images):
        return self.layers(self.stem(images))
