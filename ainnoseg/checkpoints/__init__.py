"""Checkpoints: saving and loading them, the released models, their cards.

    files     save_checkpoint, load_checkpoint, load_model, CheckpointError
    released  ainnoseg.load (a released name or a checkpoint file), its ModelMeta, list_released
    cards     what a release was trained on, its budget, scores and limits
    sets      the demo's model sets: one HRNet, DANet and AinnoSeg release per dataset
"""

from .files import CheckpointError, export_weights, load_checkpoint, load_model, save_checkpoint
from .released import RELEASES_DIR, ModelMeta, list_released, load

# The modules cards and sets are public too: `from ainnoseg.checkpoints import sets`.
__all__ = ["CheckpointError", "ModelMeta", "RELEASES_DIR", "cards", "export_weights",
           "list_released", "load", "load_checkpoint", "load_model", "save_checkpoint", "sets"]
