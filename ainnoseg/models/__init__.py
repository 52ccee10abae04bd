"""Segmentation models; importing this registers every variant."""

from . import zoo
from .auxiliary_output import AuxiliaryOutput, output_names
from .segmentor import Segmentor

__all__ = ["AuxiliaryOutput", "Segmentor", "output_names", "zoo"]
