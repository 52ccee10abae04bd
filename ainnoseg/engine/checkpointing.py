"""What a training checkpoint holds, and starting from one: a resume's
state, another run's weights as a start, the random generators, the class
weights a run counted once, and what to do when the weights diverged (never
saved non-finite, restart advice)."""

import itertools
import json
import shlex
from pathlib import Path

import torch

from ..checkpoints.files import CheckpointError, load_checkpoint
from ..config import MODEL_OPTION_DEFAULTS, model_options, plain_values
from ..data import build_dataset
from ..data.class_weights import class_pixel_counts, class_weights, describe
from ..files import atomic_write
from ..runs import layout
from ..runs.files import read_json
from . import distributed


def resume_state(run_dir, config):
    """The last checkpoint of a run directory, checked against the config."""
    state = load_checkpoint(Path(run_dir) / layout.LAST)
    if state["config"]["model"] != config.model:
        raise CheckpointError(
            f"{run_dir}/last.pt holds a {state['config']['model']}, not {config.model}")
    return state


def load_initial_weights(model, config):
    """Start from another run's weights (not its optimizer or step). From a
    checkpoint of another class count (fine-tuning to a new dataset), the
    layers whose shape depends on it start from random and are named."""
    path = config.init_checkpoint
    state = load_checkpoint(path)
    if state["config"].get("model") != config.model:
        raise CheckpointError(f"checkpoint {path} holds a {state['config'].get('model')} but "
                              f"{config.model} was asked for")
    _check_same_options(path, model_options(state["config"]), model_options(config.to_dict()))
    own = model.state_dict()
    weights = {k: v.float() if v.is_floating_point() else v for k, v in state["model"].items()}
    misfits = sorted(k for k in own if k in weights and weights[k].shape != own[k].shape)
    saved_classes = len(state.get("class_names", ()))
    new_classes = model.num_classes
    if set(weights) != set(own) or (misfits and saved_classes == new_classes):
        unknown = sorted(set(weights) ^ set(own)) + misfits
        raise CheckpointError(f"checkpoint {path} does not fit {config.model}: "
                              f"{', '.join(unknown[:5])} differ")
    model.load_state_dict({k: v for k, v in weights.items() if k not in misfits}, strict=False)
    if misfits and distributed.is_main_process():
        print(f"init_checkpoint {path} predicts {saved_classes} classes, this data has "
              f"{new_classes}: loaded every layer but {len(misfits)} tensors that depend on "
              f"the class count, which start from random: {', '.join(misfits)}", flush=True)


def _check_same_options(path, saved, asked):
    """A checkpoint's architecture options must be the run's: name the keys to set."""
    differ = sorted(set(saved.items()) ^ set(asked.items()))
    if differ:
        keys = sorted({key for key, _ in differ})
        fix = " ".join(f"{key}={saved.get(key, MODEL_OPTION_DEFAULTS[key])}" for key in keys)
        raise CheckpointError(f"checkpoint {path} was trained with other architecture options "
                              f"than this run's ({', '.join(keys)}): start from it with {fix}")


def rng_states(device):
    """The generators a resumed run continues: the CPU's, and the GPU's when
    training on one (dropout draws there)."""
    states = {"rng": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda_rng"] = torch.cuda.get_rng_state(device)
    return states


def restore_rng_states(state, device):
    torch.set_rng_state(state["rng"])
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)


def training_checkpoint(model, optimizer, scaler, config, dataset, step, metrics, best):
    """What last.pt and best.pt hold: weights, optimizer, config, classes, step, scores, RNG."""
    return {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(), "config": plain_values(config.to_dict()),
        "class_names": list(dataset.class_names), "palette": [list(c) for c in dataset.palette],
        "step": step, "metrics": metrics, "best_mean_iou": best,
        **rng_states(next(model.parameters()).device),
    }


def restart_advice(run_dir, config, saved_step):
    """What to do once training diverged: a resume would keep the lr and
    diverge again, so start a new run from the last good weights."""
    lower = f"lr={config.lr / 10:g}"
    if saved_step is None:
        return (f"no checkpoint was written yet: start again with a lower lr ({lower}), "
                "grad_clip=1.0 or amp=off")
    last = run_dir / layout.LAST
    command = shlex.join(["ainnoseg", "train", str(run_dir / layout.CONFIG),
                          f"init_checkpoint={last}", lower, f"run_dir={run_dir}_restart"])
    return (f"{last} keeps the last good weights (step {saved_step}): start a new run from "
            f"them with a lower lr, `{command}`, or with grad_clip=1.0 or amp=off")


def require_finite(model, step, advice):
    """Refuse to save weights a diverged step made NaN or infinite."""
    bad = [name for name, tensor in itertools.chain(model.named_parameters(),
                                                    model.named_buffers())
           if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise FloatingPointError(f"the weights became non-finite at step {step} ({bad[0]}{more}), "
                                 f"so they were not saved; {advice}")


def run_class_weight(config, run_dir):
    """The (K,) class weights a run's `class_weighting` asks for, or None.

    Counted once on the raw labelled training split of `config.data` and kept
    in run_dir/class_weights.json, so a resumed run (or a self-training
    student) weights exactly as before.
    """
    if config.class_weighting == "none":
        return None
    path = Path(run_dir) / layout.CLASS_WEIGHTS
    record = read_json(path)
    if record is not None:
        if record.get("method") == config.class_weighting:
            return torch.tensor(record["weights"], dtype=torch.float32)
    dataset = build_dataset(config.data, config.train_split)
    counts = class_pixel_counts(dataset)
    weights = class_weights(counts, config.class_weighting)
    record = {"method": config.class_weighting, "data": str(config.data),
              "split": config.train_split, "pixels": counts.tolist(),
              "weights": weights.tolist(),
              "by_class": describe(weights, dataset.class_names)}
    text = json.dumps(record, indent=2) + "\n"
    atomic_write(path, lambda handle: handle.write(text.encode()))
    return weights
