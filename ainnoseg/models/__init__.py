"""Segmentation models; importing this registers every variant."""

from . import zoo
from .segmentor import Segmentor

__all__ = ["Segmentor", "zoo"]
