"""Publish a trained run: half-precision weights and a manifest entry that says
how they were made and what they score, measured on the published file.

    manifest.json = {name: {"file", "sha256", "model", "dataset", "config",
                            "command", "iterations", "best_step",
                            "wall_time_hours", "hardware", "scored_on", "val": {
                                "single_scale": {...metrics, "command"},
                                "multi_scale_flip": {...metrics, "command"}}}}
"""

import hashlib
import json
import platform
from pathlib import Path

import torch

from ..data import build_dataset, eval_transforms
from ..fast import optimize_for_inference
from ..files import atomic_write, json_ready
from ..inference import PAPER_SCALES
from .checkpoint import export_weights, load_checkpoint, load_model
from .evaluate import evaluate
from .selftrain import round_record, round_wall_time_hours

SUMMARY_KEYS = ("pixel_accuracy", "mean_iou", "mean_class_accuracy", "score", "boundary_iou",
                "boundary_fscore", "class_iou", "class_boundary_iou")


def hardware():
    """The processor (or GPU) and the threads PyTorch uses, in words."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    name = platform.processor() or "CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name}, {torch.get_num_threads()} threads"


def wall_time_hours(run_dir):
    """Hours the run was running, summed over its TensorBoard event files
    (one per start or resume; the gaps between them are not counted, while
    evaluations and any time the process was paused or shared the machine are)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    seconds = 0.0
    for path in sorted(Path(run_dir).glob("events.out.tfevents.*")):
        times = [event.wall_time for event in EventFileLoader(str(path)).Load()]
        if times:
            seconds += max(times) - min(times)
    return seconds / 3600


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _scored(model, dataset, amp, scales, flip, command):
    results = evaluate(optimize_for_inference(model, amp=amp), dataset, scales=scales,
                       flip=flip, amp=amp, progress=True)
    return {**{key: results[key] for key in SUMMARY_KEYS}, "scales": list(scales),
            "flip": flip, "amp": amp, "command": command}


def publish(run_dir, out_dir, name, data=None, split=None, amp="bf16",
            ms_scales=PAPER_SCALES, command=None, trained_on=None, note=None,
            round_index=None):
    """Write out_dir/<name>.pt (float16 weights of run_dir/best.pt) and its
    entry in out_dir/manifest.json, evaluated single-scale and multi-scale +
    flip from the written file.

    Args:
        run_dir: a training run, or a self-training run with `round_index`:
            then the round's fine-tuned student (round_<r>/finetune/last.pt,
            the checkpoint the round evaluated and handed on as the next
            teacher) is published, and the entry gains "selftrain" (see
            `round_record`); its iterations and wall time are the round's.
        data, split: where to score; default the run's own data and val split.
        amp: inference precision of the scores, recorded with them and in
            their eval commands ("off" is float32).
        ms_scales: the multi-scale + flip evaluation's scales.
        command: how the run was started, for the record.
        trained_on: the hardware that trained the run, in words (default:
            this machine, which is always recorded as where the scores ran).
        note: anything else a reader must know about the run.
    Returns the manifest entry.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    selftrain_run = (run_dir / "selftrain.yaml").is_file()
    if selftrain_run != (round_index is not None):
        raise ValueError(f"{run_dir} is a self-training run: say which round to publish"
                         if selftrain_run else
                         f"{run_dir} is not a self-training run (no selftrain.yaml); "
                         "a round applies to self-training runs only")
    if selftrain_run:
        source, selftrain = round_record(run_dir, round_index)
        earlier_steps = selftrain["student_iterations"]  # the round is finished
        hours = round_wall_time_hours(run_dir, round_index)
    else:
        source, selftrain, earlier_steps = run_dir / "best.pt", None, 0
        hours = wall_time_hours(run_dir)
    state = load_checkpoint(source)
    config = state["config"]
    dataset_path, split = data or config["data"], split or config["val_split"]
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.pt"
    export_weights(source, weights)
    last_path = source.parent / "last.pt"
    last = load_checkpoint(last_path) if last_path.is_file() else state

    dataset = build_dataset(dataset_path, split, transforms=eval_transforms())
    model, _ = load_model(weights, num_classes=dataset.num_classes)
    evaluate_command = f"ainnoseg eval {weights} {dataset_path} --split {split} --amp {amp}"
    ms_flags = f" --scales {' '.join(f'{s:g}' for s in ms_scales)} --flip"
    entry = {
        "file": weights.name,
        "sha256": sha256(weights),
        "model": config["model"],
        "dataset": f"{Path(dataset_path).name}: trained on {config['train_split']}, "
                   f"scored on {split}",
        "class_names": state["class_names"],
        "config": config,
        "command": command or (f"ainnoseg {'selftrain' if selftrain else 'train'} CONFIG "
                               f"(run directory {run_dir})"),
        "iterations": earlier_steps + last["step"],
        "best_step": earlier_steps + state["step"],
        "wall_time_hours": round(hours, 2),
        "hardware": trained_on or hardware(),
        "scored_on": hardware(),
        "torch": torch.__version__,
        "val": {
            "single_scale": _scored(model, dataset, amp, (1.0,), False, evaluate_command),
            "multi_scale_flip": _scored(model, dataset, amp, tuple(ms_scales), True,
                                        evaluate_command + ms_flags),
        },
    }
    if selftrain:
        entry["selftrain"] = selftrain
    if note:
        entry["note"] = note
    manifest_path = out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest[name] = json_ready(entry)
    text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"
    atomic_write(manifest_path, lambda handle: handle.write(text.encode()))
    return manifest[name]
