"""Publish a trained run: half-precision weights and a manifest entry that says
how they were made and what they score, measured on the published file.

    manifest.json = {name: {"file", "sha256", "model", "dataset", "config",
                            "command", "iterations", "best_step",
                            "wall_time_hours", "hardware", "scored_on", "val": {
                                "single_scale": {...metrics, "command"},
                                "multi_scale_flip": {...metrics, "command"}},
                            "works_on", "limits", "note"}}

Publishing is all or nothing: the weights are written and scored as a hidden
temporary file, and only when every score is in do the weights and the
manifest move into place, one right after the other.
"""

import hashlib
import json
import os
import platform
import shlex
import tempfile
from pathlib import Path

import torch

from ..checkpoints.files import export_weights, load_checkpoint, load_model
from ..config import PATH_KEYS
from ..data import build_dataset, eval_transforms
from ..files import atomic_write, json_ready
from ..inference.fast import optimize_for_inference
from ..inference.multiscale import PAPER_SCALES
from ..runs import layout
from ..runs.files import read_json
from .evaluate import evaluate
from .selftrain_summary import round_record, round_wall_time_hours

SUMMARY_KEYS = ("pixel_accuracy", "mean_iou", "mean_class_accuracy", "score", "boundary_iou",
                "boundary_fscore", "class_iou", "class_boundary_iou")


def processor_name():
    """The processor's model name, e.g. "AMD EPYC" (benchmarks print it too)."""
    name = platform.processor() or "CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return name


def hardware():
    """The processor (or GPU) and the threads PyTorch uses, in words."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"{processor_name()}, {torch.get_num_threads()} threads"


def wall_time_hours(run_dir):
    """Hours the run was running, summed over its TensorBoard event files
    (one per start or resume; the gaps between them are not counted, while
    evaluations and any time the process was paused or shared the machine are)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    seconds = 0.0
    for path in sorted(Path(run_dir).glob(layout.EVENTS)):
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


def portable(path):
    """`path` as a command to rerun elsewhere should name it: relative to the
    current directory (the project root, for a release) when it lies under it
    or beside it (../shared/...); otherwise as it is."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    here = Path.cwd()
    for base, prefix in ((here, ""), (here.parent, "../")):
        if path.is_relative_to(base) and base != Path(base.anchor):
            return prefix + str(path.relative_to(base))
    return str(path)


def _read_manifest(path):
    try:
        return read_json(path) or {}
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); repair or move it, then "
                         "publish again") from None


def _move_into_place(staged_weights, weights, manifest, manifest_path):
    """The last step: the manifest is written beside its place first, then the
    weights and the manifest are renamed into place back to back."""
    text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"
    staged_manifest = manifest_path.with_name(f".{manifest_path.name}.publishing")
    atomic_write(staged_manifest, lambda handle: handle.write(text.encode()))
    os.replace(staged_weights, weights)
    os.replace(staged_manifest, manifest_path)


def _scored(model, dataset, amp, scales, flip, command):
    results = evaluate(optimize_for_inference(model, amp=amp), dataset, scales=scales,
                       flip=flip, amp=amp, progress=True)
    return {**{key: results[key] for key in SUMMARY_KEYS}, "scales": list(scales),
            "flip": flip, "amp": amp, "command": command}


def publish(run_dir, out_dir, name, data=None, split=None, amp="bf16",
            ms_scales=PAPER_SCALES, command=None, trained_on=None, note=None,
            round_index=None, works_on=None, limits=None):
    """Write out_dir/<name>.pt (float16 weights of run_dir/best.pt) and its
    entry in out_dir/manifest.json, evaluated single-scale and multi-scale +
    flip from the written file; if anything fails, neither is changed.

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
        works_on, limits: the images the model is made for and what to expect
            on others, in words, for its model card (`checkpoints.cards`);
            default: those of the entry this one replaces, if any.
    Returns the manifest entry.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    source, record = _run_record(run_dir, round_index, command, trained_on)
    state = load_checkpoint(source)
    dataset_path, split = data or state["config"]["data"], split or state["config"]["val_split"]
    dataset = build_dataset(dataset_path, split, transforms=eval_transforms())
    manifest_path = out_dir / "manifest.json"
    _read_manifest(manifest_path)  # a damaged manifest stops publishing before any work
    out_dir.mkdir(parents=True, exist_ok=True)
    # one publisher at a time, which first removes what a killed one staged
    with layout.writing(out_dir):
        layout.remove_leftovers(out_dir)
        weights = out_dir / f"{name}.pt"
        descriptor, staged = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.pt.",
                                              suffix=".publishing")
        os.close(descriptor)
        try:
            export_weights(source, staged)
            model, _ = load_model(staged, num_classes=dataset.num_classes)
            entry = _entry(weights, staged, state, record, model, dataset, dataset_path, split,
                           amp, ms_scales)
            manifest = _read_manifest(manifest_path)
            earlier = manifest.get(name, {})
            words = {"works_on": works_on or earlier.get("works_on"),
                     "limits": limits or earlier.get("limits"), "note": note}
            entry.update({key: text for key, text in words.items() if text})
            manifest[name] = json_ready(entry)
            _move_into_place(staged, weights, manifest, manifest_path)
        finally:
            Path(staged).unlink(missing_ok=True)
        return manifest[name]

def _entry(weights, staged, state, record, model, dataset, dataset_path, split, amp, ms_scales):
    """The manifest entry of the weights staged for `weights`: what they are,
    how their run went, and their val scores with the commands that give them."""
    evaluate_command = ["ainnoseg", "eval", portable(weights), portable(dataset_path),
                        "--split", split, "--amp", amp]
    ms_flags = ["--scales", *(f"{s:g}" for s in ms_scales), "--flip"]
    return {
        "file": weights.name,
        "sha256": sha256(staged),
        "model": state["config"]["model"],
        "dataset": f"{Path(dataset_path).name}: trained on "
                   f"{state['config']['train_split']}, scored on {split}",
        "class_names": state["class_names"],
        "config": _portable_config(state["config"]),
        **record["run"],
        "best_step": record["earlier_steps"] + state["step"],
        **record["machine"],
        "val": {
            "single_scale": _scored(model, dataset, amp, (1.0,), False,
                                    shlex.join(evaluate_command)),
            "multi_scale_flip": _scored(model, dataset, amp, tuple(ms_scales), True,
                                        shlex.join(evaluate_command + ms_flags)),
        },
        **record["extra"],
    }


def _portable_config(config):
    """The run's config with the files and folders it names (PATH_KEYS and its
    run directory) as `portable` names them: a release trained from
    assets/checkpoints/... records that path, not the training machine's."""
    paths = {key: portable(config[key]) for key in (*PATH_KEYS, "run_dir") if config.get(key)}
    return {**config, **paths}


def _run_record(run_dir, round_index, command, trained_on):
    """(the checkpoint to publish, what the entry says about its run: "run"
    (command, iterations), "earlier_steps", "machine" (wall time, hardware),
    "extra" (a self-training round's record))."""
    selftrain_run = (run_dir / layout.SELFTRAIN_CONFIG).is_file()
    if selftrain_run != (round_index is not None):
        raise ValueError(f"{run_dir} is a self-training run: say which round to publish"
                         if selftrain_run else
                         f"{run_dir} is not a self-training run (no selftrain.yaml); "
                         "a round applies to self-training runs only")
    if selftrain_run:
        source, selftrain = round_record(run_dir, round_index)
        earlier_steps = selftrain["student_iterations"]  # the round is finished
        hours, extra = round_wall_time_hours(run_dir, round_index), {"selftrain": selftrain}
    else:
        source, earlier_steps = run_dir / layout.BEST, 0
        hours, extra = wall_time_hours(run_dir), {}
    last_path = source.parent / layout.LAST
    last = load_checkpoint(last_path) if last_path.is_file() else load_checkpoint(source)
    kind = "selftrain" if selftrain_run else "train"
    return source, {
        "run": {"command": command or f"ainnoseg {kind} CONFIG (run directory {run_dir})",
                "iterations": earlier_steps + last["step"]},
        "earlier_steps": earlier_steps,
        "machine": {"wall_time_hours": round(hours, 2), "hardware": trained_on or hardware(),
                    "scored_on": hardware(), "torch": torch.__version__},
        "extra": extra,
    }
