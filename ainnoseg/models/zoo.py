"""Every registered model: a private builder per family, one line per variant."""

from ..registry import register_model
from .backbones import DilatedResNet, HRNetV2
from .heads import AinnoSegHead, DANetHead, FCNHead, OCRNetHead
from .segmentor import Segmentor

# Our width names -> timm's HRNet variants.
HRNET_VARIANTS = {
    "w18s": "hrnet_w18_small_v2",
    "w18": "hrnet_w18",
    "w32": "hrnet_w32",
    "w48": "hrnet_w48",
}

# Each family's loss weights, from its paper: HRNet-OCR uses aux 0.4 + final
# 1.0, DANet sums its three outputs, AinnoSeg's Eq. (1) uses 0.1, 0.3, 1.0.
FCN_LOSS = {"out": 1.0}
OCR_LOSS = {"out": 1.0, "ocr": 0.4}
DANET_LOSS = {"out": 1.0, "pam": 1.0, "cam": 1.0}
AINNOSEG_LOSS = {"out": 1.0, "ocr": 0.3, "da": 0.1}

# Architecture options each head takes (see heads.py), besides `pretrained`;
# naive_pam (the materialised N x N attention) is for comparisons only.
DA_OPTIONS = ("da_channels", "cam_energy", "naive_pam")
OCR_OPTIONS = ("ocr_channels",)
AINNOSEG_OPTIONS = (*DA_OPTIONS, "ocr_pixels", *OCR_OPTIONS)


def _hrnet_model(head_class, loss_weights, variant, num_classes, pretrained=False,
                 **head_options):
    backbone = HRNetV2(variant, pretrained=pretrained)
    head = head_class(backbone.out_channels, num_classes, **head_options)
    return Segmentor(backbone, head, num_classes, loss_weights)


def _danet(depth, num_classes, pretrained=False, **head_options):
    backbone = DilatedResNet(depth, pretrained=pretrained)
    head = DANetHead(backbone.out_channels, num_classes, **head_options)
    return Segmentor(backbone, head, num_classes, DANET_LOSS)


def _register_hrnet_family(prefix, head_class, loss_weights, options=()):
    for width, variant in HRNET_VARIANTS.items():
        register_model(
            f"{prefix}_{width}",
            lambda variant=variant, **kw: _hrnet_model(head_class, loss_weights, variant, **kw),
            options)


_register_hrnet_family("hrnetv2", FCNHead, FCN_LOSS)
_register_hrnet_family("ocrnet_hrnet", OCRNetHead, OCR_LOSS, OCR_OPTIONS)
_register_hrnet_family("hrnet_da", DANetHead, DANET_LOSS, DA_OPTIONS)
_register_hrnet_family("ainnoseg", AinnoSegHead, AINNOSEG_LOSS, AINNOSEG_OPTIONS)
for _depth in (18, 50, 101):
    register_model(f"danet_r{_depth}", lambda depth=_depth, **kw: _danet(depth, **kw),
                   DA_OPTIONS)
