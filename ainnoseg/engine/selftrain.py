"""Self-training: the paper's teacher/student rounds.

    ainnoseg selftrain configs/selftrain_synthetic_quick.yaml
    ainnoseg selftrain --resume runs/selftrain_synthetic_quick

Round 0 trains a teacher on the labelled set (or takes the `teacher`
checkpoint). Each round r >= 1 pseudo-labels the unlabeled pool with the
teacher's multi-scale + flip inference, trains a student on the pseudo-labels
(mixed with labelled samples if `pseudo_ratio` < 1), fine-tunes it on the
labelled set, evaluates it on val, and makes it the next teacher.

The run directory:
    selftrain.yaml               the config
    progress.jsonl               {"time", "round", "phase", "step", "total", "eta_s"}
                                 per step; phases: teacher, pseudo-label, student,
                                 fine-tune, eval
    summary.json                 per round: val metrics and pseudo-label statistics
    pool/<stem>.png              pool images that have no file (the synthetic scenes)
    round_0/                     the teacher's training run (config.yaml, metrics.jsonl,
                                 last.pt, best.pt), or teacher.json naming the given one
    round_0/metrics.json         the teacher's val metrics
    round_<r>/teacher.json       the checkpoint that pseudo-labelled round r
    round_<r>/pseudo/<stem>.png  uint8 pseudo-labels, 255 = ignore
    round_<r>/pseudo_stats.json  see `pseudo_label_stats`
    round_<r>/student/           training run on the pseudo-labels
    round_<r>/finetune/          training run on the labelled set; its last.pt
                                 is the next round's teacher
    round_<r>/metrics.json       val metrics of the fine-tuned student

Each phase is recognised as finished from its files (pseudo_stats.json, a
last.pt whose step is the run's iterations, metrics.json), so a stopped run
resumes at the phase and step where it stopped: training through
`train(..., resume=True)`, pseudo-labelling by skipping images whose PNG exists.
"""

import dataclasses
import json
import time
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..config import ConfigError, load_config, resume_changes, save_config, with_absolute_paths
from ..data import IGNORE_INDEX as IGNORE, DataError, LabeledImages, open_pool, train_transforms
from ..inference.fast import optimize_for_inference
from . import distributed
from ..checkpoints.files import load_checkpoint, load_model
from .evaluate import evaluate
from ..runs.heartbeat import Heartbeat
from .pseudo_label import (label_pool, pseudo_label_stats, read_json,
                           write_json, write_png)
from ..runs.log import read_jsonl
from .train import build_datasets, refuse_existing_run, train
from ..runs.layout import remove_leftovers, require_new_or_run, writing

VAL_KEYS = ("pixel_accuracy", "mean_iou", "mean_class_accuracy", "score", "boundary_iou",
            "boundary_fscore")
PSEUDO_KEYS = ("images", "kept_share", "agreement", "mean_iou", "pixel_accuracy")


class Progress:
    """Appends progress records to progress.jsonl (main process) and hands
    each to `callback` (e.g. a dashboard, or a test that stops the run)."""

    def __init__(self, path, callback=None):
        self.path, self.callback = Path(path), callback
        self.round = self.phase = None
        self.started, self.first_step = 0.0, 0
        self.heartbeat = Heartbeat(self.path.parent, enabled=distributed.is_main_process())

    def start(self, round_index, phase, step, total):
        """A phase begins (or resumes) at `step` of `total`."""
        self.round, self.phase = round_index, phase
        self.started, self.first_step = time.time(), step
        if distributed.is_main_process():
            print(f"self-training round {round_index}: {phase} from step {step}/{total}",
                  flush=True)
        self.update(step, total)

    def update(self, step, total):
        done = step - self.first_step
        elapsed = time.time() - self.started
        eta = round(elapsed / done * (total - step), 1) if done > 0 else None
        record = {"time": round(time.time(), 3), "round": self.round, "phase": self.phase,
                  "step": step, "total": total, "eta_s": eta}
        if distributed.is_main_process():
            with self.path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
        self.heartbeat.beat(step, total, round=self.round, phase=self.phase)
        if self.callback is not None:
            self.callback(record)


class MixedSamples(Dataset):
    """The pseudo-labelled samples followed by labelled "slots", so that a share
    `pseudo_ratio` of the samples is pseudo-labelled. Each slot draws a labelled
    sample with torch's generator, which training seeds per sample, so a
    resumed run draws the same ones."""

    def __init__(self, pseudo, labeled, pseudo_ratio):
        self.pseudo, self.labeled = pseudo, labeled
        self.labeled_slots = round(len(pseudo) * (1 - pseudo_ratio) / pseudo_ratio)
        self.class_names, self.palette = labeled.class_names, labeled.palette
        self.num_classes, self.ignore_index = labeled.num_classes, labeled.ignore_index

    def __len__(self):
        return len(self.pseudo) + self.labeled_slots

    def __getitem__(self, index):
        if index < len(self.pseudo):
            return self.pseudo[index]
        return self.labeled[torch.randint(len(self.labeled), ()).item()]


def _student_set(config, pool, image_files, pseudo_dir, labeled):
    """The student's training set: pool images with their pseudo-label PNGs."""
    identity = {**{c: c for c in range(labeled.num_classes)}, IGNORE: IGNORE}
    pairs = [(file, Path(pseudo_dir) / f"{stem}.png")
             for file, stem in zip(image_files, pool.stems)]
    transforms = train_transforms(config.crop_size, config.scale, config.ratio_range,
                                  config.cat_max_ratio)
    pseudo = LabeledImages(pairs, labeled.class_names, labeled.palette, identity, transforms)
    if config.pseudo_ratio == 1.0:
        return pseudo
    return MixedSamples(pseudo, labeled, config.pseudo_ratio)


def _pool_image_files(pool, folder):
    """Every pool image's file; images without one are written to `folder` once."""
    files = list(pool.files)
    missing = [i for i, file in enumerate(files) if file is None]
    if missing and distributed.is_main_process():
        Path(folder).mkdir(parents=True, exist_ok=True)
        for index in missing:
            path = Path(folder) / f"{pool.stems[index]}.png"
            if not path.is_file():
                write_png(pool.image(index).permute(1, 2, 0), path)
    distributed.barrier()
    for index in missing:
        files[index] = Path(folder) / f"{pool.stems[index]}.png"
    return files


def _finished_steps(run_dir):
    last = Path(run_dir) / "last.pt"
    return load_checkpoint(last)["step"] if last.is_file() else 0


def _train_phase(config, round_index, phase, progress, datasets=None):
    """Train `config` in its run_dir unless finished; resume it if started."""
    done = _finished_steps(config.run_dir)
    if done >= config.iterations:
        return
    progress.start(round_index, phase, done, config.iterations)
    # overwrite: files there are this phase's own, from a start killed before a checkpoint
    train(config, resume=done > 0, datasets=datasets, overwrite=True,
          on_step=lambda step, total: progress.update(step, total))


def _eval_phase(config, round_index, checkpoint, val_set, progress):
    """Val metrics of `checkpoint` with the config's eval settings -> metrics.json."""
    out = Path(config.run_dir) / f"round_{round_index}" / "metrics.json"
    if out.is_file():
        return
    progress.start(round_index, "eval", 0, 1)
    _, world_size, device = distributed.init_distributed()
    model, _ = load_model(checkpoint, num_classes=val_set.num_classes)
    fast = optimize_for_inference(model.to(device), config.amp, config.channels_last)
    results = evaluate(fast, val_set, config.eval_scales, config.eval_flip,
                       config.mode, crop_size=config.crop_size, distributed=world_size > 1,
                       num_workers=config.workers, amp=config.amp)
    if distributed.is_main_process():
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json(out, {"checkpoint": str(checkpoint), **results})
    distributed.barrier()
    progress.update(1, 1)


def _pseudo_label_phase(config, round_index, teacher, pool, class_names, progress):
    """Label the pool with `teacher` into round_<r>/pseudo/, then pseudo_stats.json."""
    round_dir = Path(config.run_dir) / f"round_{round_index}"
    stats_path, out_dir = round_dir / "pseudo_stats.json", round_dir / "pseudo"
    if stats_path.is_file():
        return
    rank, world_size, device = distributed.init_distributed()
    if distributed.is_main_process():
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in out_dir.glob(".*.tmp"):  # left by a killed run
            stale.unlink()
        write_json(round_dir / "teacher.json", {"checkpoint": str(teacher)})
    distributed.barrier()
    model, _ = load_model(teacher, num_classes=len(class_names))
    fast = optimize_for_inference(model.to(device), config.amp, config.channels_last)
    mine = range(rank, len(pool), world_size)
    done = sum((out_dir / f"{pool.stems[i]}.png").is_file() for i in mine)
    progress.start(round_index, "pseudo-label", done, len(mine))
    label_pool(fast, pool, out_dir, config.threshold, config.pseudo_scales, config.pseudo_flip,
               config.amp, config.pseudo_batch, config.workers, indices=mine,
               on_image=lambda written, _: progress.update(done + written, len(mine)),
               confidence_dir=out_dir.parent / "confidence")
    distributed.barrier()
    if distributed.is_main_process():
        previous = Path(config.run_dir) / f"round_{round_index - 1}" / "pseudo"
        stats = pseudo_label_stats(out_dir, pool.stems, class_names,
                                   previous if previous.is_dir() else None,
                                   pool.mask if pool.labelled else None)
        write_json(stats_path, {"teacher": str(teacher), "threshold": config.threshold,
                                "scales": list(config.pseudo_scales),
                                "flip": config.pseudo_flip, **stats})
    distributed.barrier()


def _round_zero(config, val_set, progress):
    """Train the teacher in round_0/ (or note the given one); returns its checkpoint."""
    round_dir = Path(config.run_dir) / "round_0"
    if config.teacher:
        if not Path(config.teacher).is_file():
            raise ConfigError(f"teacher={config.teacher!r}: no checkpoint there; give a "
                              "trained checkpoint, or teacher='' to train one first")
        if distributed.is_main_process():
            round_dir.mkdir(parents=True, exist_ok=True)
            write_json(round_dir / "teacher.json", {"checkpoint": config.teacher, "given": True})
        teacher = config.teacher
    else:
        _train_phase(dataclasses.replace(config, run_dir=str(round_dir)), 0, "teacher", progress)
        teacher = str(round_dir / "last.pt")
    _eval_phase(config, 0, teacher, val_set, progress)
    return teacher


def _student_round(config, round_index, teacher, pool, labeled, val_set, progress):
    """Round r >= 1: pseudo-label, student, fine-tune, eval; returns the new teacher."""
    run_dir = Path(config.run_dir)
    round_dir = run_dir / f"round_{round_index}"
    _pseudo_label_phase(config, round_index, teacher, pool, labeled.class_names, progress)
    image_files = _pool_image_files(pool, run_dir / "pool")
    student = dataclasses.replace(
        config, run_dir=str(round_dir / "student"),
        iterations=config.student_iterations or config.iterations,
        init_checkpoint=str(teacher) if config.student_init == "teacher" else "")
    train_set = _student_set(config, pool, image_files, round_dir / "pseudo", labeled)
    _train_phase(student, round_index, "student", progress, (train_set, val_set))
    finetune = dataclasses.replace(
        config, run_dir=str(round_dir / "finetune"),
        iterations=config.finetune_iterations or config.iterations,
        init_checkpoint=str(round_dir / "student" / "last.pt"))
    _train_phase(finetune, round_index, "fine-tune", progress)
    checkpoint = str(round_dir / "finetune" / "last.pt")
    _eval_phase(config, round_index, checkpoint, val_set, progress)
    return checkpoint


def write_summary(run_dir, rounds):
    """summary.json: per round, the checkpoint evaluated (round 0: the teacher;
    round r: the fine-tuned student), its val metrics, the checkpoint that
    pseudo-labelled the round and a summary of the pseudo-label statistics."""
    run_dir = Path(run_dir)
    rows = []
    for round_index in range(rounds + 1):
        round_dir = run_dir / f"round_{round_index}"
        results = read_json(round_dir / "metrics.json")
        stats = read_json(round_dir / "pseudo_stats.json")
        teacher = read_json(round_dir / "teacher.json")
        rows.append({
            "round": round_index,
            "labelled_by": teacher["checkpoint"] if teacher and round_index > 0 else None,
            "checkpoint": results["checkpoint"] if results else None,
            "val": {k: results[k] for k in VAL_KEYS} if results else None,
            "pseudo": {k: stats[k] for k in PSEUDO_KEYS} if stats else None,
        })
    write_json(run_dir / "summary.json", {"run_dir": str(run_dir), "rounds": rows})
    return read_json(run_dir / "summary.json")  # as written: NaN became null


def round_wall_time_hours(run_dir, round_index):
    """Hours round `round_index` of the self-training run in `run_dir` ran, from
    progress.jsonl: each phase start or resume opens a segment that lasts to its
    last record, so the time the run was stopped is not counted."""
    records = read_jsonl(Path(run_dir) / "progress.jsonl")
    seconds, segment_start, previous = 0.0, None, None
    for record in records + [None]:
        starts = record is None or record["eta_s"] is None or record["round"] != round_index
        if starts and segment_start is not None:
            seconds += previous["time"] - segment_start["time"]
            segment_start = None
        if record is not None and record["round"] == round_index:
            if segment_start is None:
                segment_start = record
            previous = record
    return seconds / 3600


def round_record(run_dir, round_index):
    """What a published round-r checkpoint needs to say about its round:
    (its checkpoint path, a dict of the round's settings and pseudo-labels)."""
    run_dir = Path(run_dir)
    config = load_config(run_dir / "selftrain.yaml")
    if not 1 <= round_index <= config.rounds:
        raise ConfigError(f"{run_dir} has rounds 1 to {config.rounds}; round {round_index} "
                          "holds no student (round 0 is the teacher)")
    round_dir = run_dir / f"round_{round_index}"
    checkpoint = round_dir / "finetune" / "last.pt"
    stats = read_json(round_dir / "pseudo_stats.json")
    if stats is None or not (round_dir / "metrics.json").is_file():
        raise ConfigError(f"round {round_index} of {run_dir} is not finished; continue it with "
                          f"`ainnoseg selftrain --resume {run_dir}`")
    record = {
        "round": round_index,
        "labelled_by": read_json(round_dir / "teacher.json")["checkpoint"],
        "pool": f"{config.unlabeled or config.data} ({config.unlabeled_split})",
        "pseudo_scales": stats["scales"], "pseudo_flip": stats["flip"],
        "threshold": stats["threshold"], "student_init": config.student_init,
        "pseudo_ratio": config.pseudo_ratio,
        "student_iterations": config.student_iterations or config.iterations,
        "finetune_iterations": config.finetune_iterations or config.iterations,
        "pseudo": {key: stats[key] for key in PSEUDO_KEYS},
    }
    return checkpoint, record


def _check_run_dir(config, resume):
    """A new run needs a run directory without a run; a resumed one, its own."""
    run_dir = Path(config.run_dir)
    if resume and not (run_dir / "selftrain.yaml").is_file():
        raise ConfigError(f"{run_dir} holds no self-training run (no selftrain.yaml) to resume")
    if not resume:
        refuse_existing_run(run_dir)
    distributed.barrier()  # every process has looked before the first one writes


def _check_teacher(config, num_classes):
    """A given teacher is a checkpoint of the labelled data's classes."""
    if config.teacher and not Path(config.teacher).is_file():
        raise ConfigError(f"teacher={config.teacher!r}: no checkpoint there; give a "
                          "trained checkpoint, or teacher='' to train one first")
    if config.teacher:
        load_model(config.teacher, num_classes=num_classes)


def _open_run_dir(config, resume):
    """Write selftrain.yaml: a new run's config, or a resumed run's where
    key=value changed it (later resumes and `publish` see the change)."""
    saved = Path(config.run_dir) / "selftrain.yaml"
    if distributed.is_main_process() and (not resume or load_config(saved) != config):
        saved.parent.mkdir(parents=True, exist_ok=True)
        save_config(config, saved)
    distributed.barrier()


def selftrain(config, resume=False, on_progress=None):
    """Run (or, with `resume`, continue) the self-training rounds of `config`.

    Args:
        config: a `Config`; its self-training keys (teacher, unlabeled,
            rounds, threshold, student_init, pseudo_ratio, ...) apply.
        resume: continue the run in config.run_dir where it stopped.
        on_progress: called with every progress record (see `Progress`).
    Returns the summary written to run_dir/summary.json. The run directory
    must be new, empty or a run, and is written by one process at a time
    (see engine/writer.py); its rounds' training runs are its own.
    """
    joined = not distributed.is_distributed()  # leave a caller's process group alone
    distributed.init_distributed()
    require_new_or_run(config.run_dir)
    if not resume:
        config = with_absolute_paths(config)  # its saved config works from anywhere
    main = distributed.is_main_process()
    with writing(config.run_dir, enabled=main):
        if main:
            remove_leftovers(config.run_dir)
        summary = _selftrain(config, resume, on_progress)
    if joined:
        distributed.cleanup()
    return summary


def _selftrain(config, resume, on_progress):
    """selftrain()'s work, in a run directory this process may write."""
    _check_run_dir(config, resume)
    # Everything that can be checked is, before the run directory is made.
    labeled, val_set = build_datasets(config)
    pool = open_pool(config.unlabeled or config.data, config.unlabeled_split,
                     config.unlabeled_limit)
    if pool.labelled and pool.dataset.num_classes != labeled.num_classes:
        raise DataError(f"the pool {config.unlabeled} has {pool.dataset.num_classes} classes but "
                        f"the labelled data {config.data} has {labeled.num_classes}; use a pool "
                        "of the same classes, or a folder of images")
    if not resume:
        _check_teacher(config, labeled.num_classes)
    _open_run_dir(config, resume)
    progress = Progress(Path(config.run_dir) / "progress.jsonl", on_progress)
    teacher = _round_zero(config, val_set, progress)
    for round_index in range(1, config.rounds + 1):
        teacher = _student_round(config, round_index, teacher, pool, labeled, val_set, progress)
    summary = None
    if distributed.is_main_process():
        summary = write_summary(config.run_dir, config.rounds)
    progress.heartbeat.finish()
    return summary


def resume_selftrain(run_dir, overrides=()):
    """Continue the self-training run in `run_dir` where it stopped.

    overrides: key=value strings for the keys in RESUME_OVERRIDABLE only
        (e.g. workers=1, data=... where the data moved), kept in selftrain.yaml.
    """
    saved = Path(run_dir) / "selftrain.yaml"
    if not saved.is_file():
        raise ConfigError(f"{run_dir} holds no self-training run (no selftrain.yaml) to resume")
    resume_changes(overrides, "in another run_dir")  # only the keys a resume may change
    config = load_config(saved, overrides)
    return selftrain(dataclasses.replace(config, run_dir=str(run_dir)), resume=True)


def format_summary(summary):
    """One line per round: val mIoU, and the pseudo-labels' coverage, agreement, mIoU."""
    def percent(value):
        return "     -" if value is None else f"{100 * value:6.2f}"

    lines = ["round  val mIoU %  kept %  agree %  pseudo mIoU %"]
    for row in summary["rounds"]:
        val, pseudo = row["val"] or {}, row["pseudo"] or {}
        lines.append(f"{row['round']:>5}  {percent(val.get('mean_iou')):>10}  "
                     f"{percent(pseudo.get('kept_share'))}  {percent(pseudo.get('agreement')):>7}"
                     f"  {percent(pseudo.get('mean_iou')):>13}")
    return "\n".join(lines)
