"""Checkpoints: written atomically, read with `weights_only=True`.

A checkpoint is a dict of plain types and tensors:
    model: state dict          config: the run's config as a dict
    class_names, palette       metrics: last validation metrics
    step: iterations done      optimizer, rng (and cuda_rng on a GPU): only in
                               training checkpoints
"""

from pathlib import Path

import torch

from ..config import EARLIER_DEFAULTS, model_options
from ..files import atomic_write
from ..registry import build_model, model_option_names


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked; the message says why."""


def save_checkpoint(state, path):
    """Write `state` to `path` atomically: a killed process, or a write that
    fails (a full disk), leaves the old file. A failed write is an OSError
    that says so, in one line."""
    path = Path(path)
    try:
        atomic_write(path, lambda handle: torch.save(state, handle))
    except (OSError, RuntimeError) as error:
        # torch.save reports a failed write as a RuntimeError raised while handling it
        cause = error if isinstance(error, OSError) else error.__context__
        if not isinstance(cause, OSError):
            raise
        kept = (f"the previous {path.name} there is intact" if path.is_file()
                else f"no {path.name} was written")
        raise OSError(f"cannot write {path}: {cause.strerror or cause}; {kept}. Free some space "
                      "(or fix the folder) and try again; a training run continues from its "
                      "last checkpoint with --resume") from None


def load_checkpoint(path):
    """The checkpoint dict at `path`, loaded safely (no code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from error
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path} is not an ainnoseg checkpoint (no model and config inside)")
    if not isinstance(state["config"], dict):
        raise CheckpointError(f"{path} holds its config as a {type(state['config']).__name__}, "
                              "not a dict; use one written by ainnoseg training or publish")
    if "model" not in state["config"]:
        raise CheckpointError(f"{path} does not say which model it holds (no model in its "
                              "config); use a checkpoint written by ainnoseg training")
    return state


def load_model(path, num_classes=None, model_name=None):
    """Rebuild the model a checkpoint was trained as and load its weights.

    Args:
        path: checkpoint file (training or weights-only).
        num_classes, model_name: what the caller expects; a checkpoint for
            another class count or model is refused with an explanation.
    Returns:
        (model in eval mode, the checkpoint dict).
    """
    state = load_checkpoint(path)
    config = state["config"]
    if not state.get("class_names"):
        raise CheckpointError(f"checkpoint {path} has no class names, so its predictions "
                              "cannot be named or checked against a dataset; use one written "
                              "by ainnoseg training or publish")
    saved_classes = len(state["class_names"])
    if num_classes is not None and num_classes != saved_classes:
        raise CheckpointError(
            f"checkpoint {path} predicts {saved_classes} classes "
            f"({', '.join(state['class_names'][:5])}...) but {num_classes} are expected; "
            "use a checkpoint trained on this dataset, or fine-tune from it "
            f"(ainnoseg train CONFIG init_checkpoint={path})")
    if model_name is not None and model_name != config["model"]:
        raise CheckpointError(
            f"checkpoint {path} holds a {config['model']} but {model_name} was asked for")
    model = build_model(config["model"], num_classes=saved_classes, **model_options(config))
    weights = {k: v.float() if v.is_floating_point() else v for k, v in state["model"].items()}
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise CheckpointError(f"checkpoint {path} does not fit {config['model']}"
                              f"{_options_hint(config)}: {error}") from error
    return model.eval(), state


def _options_hint(config):
    """For a config without an option whose default changed: what it was read as."""
    missing = {key: value for key, value in EARLIER_DEFAULTS.items()
               if key not in config and key in model_option_names(config["model"])}
    if not missing:
        return ""
    read_as = ", ".join(f"{key}={value}" for key, value in missing.items())
    return (f" (its config has no {', '.join(missing)}, so it was read as {read_as}, as "
            "checkpoints saved before that default changed; save the options the model "
            "was built with in its config)")


def export_weights(path, out_path, dtype=torch.float16):
    """A small inference-only copy: weights in `dtype`, no optimizer or RNG state."""
    state = load_checkpoint(path)
    keep = {k: v for k, v in state.items() if k not in ("optimizer", "rng", "cuda_rng")}
    keep["model"] = {k: v.to(dtype) if v.is_floating_point() else v
                     for k, v in state["model"].items()}
    save_checkpoint(keep, out_path)
