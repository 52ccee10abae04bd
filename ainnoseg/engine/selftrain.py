"""Self-training: the paper's teacher/student rounds.

    ainnoseg selftrain configs/selftrain_synthetic_quick.yaml
    ainnoseg selftrain --resume runs/selftrain_synthetic_quick

Round 0 trains a teacher on the labelled set (or takes the `teacher`
checkpoint). Each round r >= 1 pseudo-labels the unlabeled pool with the
teacher's multi-scale + flip inference, trains a student on the pseudo-labels
(mixed with labelled samples if `pseudo_ratio` < 1), fine-tunes it on the
labelled set, evaluates it on val, and makes it the next teacher. With
`student_data=labelled`, the control, each student trains on the labelled set
instead: the same rounds and iterations without pseudo-labels.

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

from ..checkpoints.files import load_checkpoint, load_model
from ..config import ConfigError, load_saved_config, resume_changes, save_config, with_absolute_paths
from ..data import IGNORE_INDEX, DataError, LabeledImages, open_pool, train_transforms
from ..files import write_json
from ..inference.fast import optimize_for_inference
from ..runs import layout
from ..runs.heartbeat import Heartbeat
from . import distributed
from .evaluate import evaluate
from .pseudo_label import label_pool, pseudo_label_stats, write_png
from .selftrain_summary import write_summary
from .train import build_datasets, train


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
    identity = {**{c: c for c in range(labeled.num_classes)}, IGNORE_INDEX: IGNORE_INDEX}
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
    last = Path(run_dir) / layout.LAST
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
    out = layout.round_dir(config.run_dir, round_index) / layout.ROUND_METRICS
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
    round_dir = layout.round_dir(config.run_dir, round_index)
    stats_path, out_dir = round_dir / layout.PSEUDO_STATS, round_dir / layout.PSEUDO
    if stats_path.is_file():
        return
    rank, world_size, device = distributed.init_distributed()
    if distributed.is_main_process():
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in out_dir.glob(".*.tmp"):  # left by a killed run
            stale.unlink()
        write_json(round_dir / layout.TEACHER_RECORD, {"checkpoint": str(teacher)})
    distributed.barrier()
    model, _ = load_model(teacher, num_classes=len(class_names))
    fast = optimize_for_inference(model.to(device), config.amp, config.channels_last)
    mine = range(rank, len(pool), world_size)
    done = sum((out_dir / f"{pool.stems[i]}.png").is_file() for i in mine)
    progress.start(round_index, "pseudo-label", done, len(mine))
    label_pool(fast, pool, out_dir, config.threshold, config.pseudo_scales, config.pseudo_flip,
               config.amp, config.pseudo_batch, config.workers, indices=mine,
               on_image=lambda written, _: progress.update(done + written, len(mine)),
               confidence_dir=out_dir.parent / layout.CONFIDENCE)
    distributed.barrier()
    if distributed.is_main_process():
        previous = layout.round_dir(config.run_dir, round_index - 1) / layout.PSEUDO
        stats = pseudo_label_stats(out_dir, pool.stems, class_names,
                                   previous if previous.is_dir() else None,
                                   pool.mask if pool.labelled else None)
        write_json(stats_path, {"teacher": str(teacher), "threshold": config.threshold,
                                "scales": list(config.pseudo_scales),
                                "flip": config.pseudo_flip, **stats})
    distributed.barrier()


def _round_zero(config, val_set, progress):
    """Train the teacher in round_0/ (or note the given one); returns its checkpoint."""
    round_dir = layout.round_dir(config.run_dir, 0)
    if config.teacher:
        if not Path(config.teacher).is_file():
            raise ConfigError(f"teacher={config.teacher!r}: no checkpoint there; give a "
                              "trained checkpoint, or teacher='' to train one first")
        if distributed.is_main_process():
            round_dir.mkdir(parents=True, exist_ok=True)
            write_json(round_dir / layout.TEACHER_RECORD,
                       {"checkpoint": config.teacher, "given": True})
        teacher = config.teacher
    else:
        _train_phase(dataclasses.replace(config, run_dir=str(round_dir)), 0, "teacher", progress)
        teacher = str(round_dir / layout.LAST)
    _eval_phase(config, 0, teacher, val_set, progress)
    return teacher


def _student_round(config, round_index, teacher, pool, labeled, val_set, progress):
    """Round r >= 1: pseudo-label, student, fine-tune, eval; returns the new teacher.
    With student_data="labelled" (the control) the student trains on the
    labelled set and nothing is pseudo-labelled."""
    run_dir = Path(config.run_dir)
    round_dir = layout.round_dir(run_dir, round_index)
    student = dataclasses.replace(
        config, run_dir=str(round_dir / layout.STUDENT),
        iterations=config.student_iterations or config.iterations,
        init_checkpoint=str(teacher) if config.student_init == "teacher" else "")
    if config.student_data == "pseudo":
        _pseudo_label_phase(config, round_index, teacher, pool, labeled.class_names, progress)
        image_files = _pool_image_files(pool, run_dir / "pool")
        train_set = _student_set(config, pool, image_files, round_dir / layout.PSEUDO, labeled)
        _train_phase(student, round_index, "student", progress, (train_set, val_set))
    else:
        _train_phase(student, round_index, "student", progress, (labeled, val_set))
    finetune = dataclasses.replace(
        config, run_dir=str(round_dir / layout.FINETUNE),
        iterations=config.finetune_iterations or config.iterations,
        init_checkpoint=str(round_dir / layout.STUDENT / layout.LAST))
    _train_phase(finetune, round_index, "fine-tune", progress)
    checkpoint = str(round_dir / layout.FINETUNE / layout.LAST)
    _eval_phase(config, round_index, checkpoint, val_set, progress)
    return checkpoint


def _check_run_dir(config, resume):
    """A new run needs a run directory without a run; a resumed one, its own."""
    run_dir = Path(config.run_dir)
    if resume and not (run_dir / layout.SELFTRAIN_CONFIG).is_file():
        raise ConfigError(f"{run_dir} holds no self-training run (no selftrain.yaml) to resume")
    if not resume:
        layout.refuse_existing_run(run_dir)
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
    saved = Path(config.run_dir) / layout.SELFTRAIN_CONFIG
    if distributed.is_main_process() and (not resume or load_saved_config(saved) != config):
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
    layout.require_new_or_run(config.run_dir)
    if not resume:
        config = with_absolute_paths(config)  # its saved config works from anywhere
    main = distributed.is_main_process()
    with layout.writing(config.run_dir, enabled=main):
        if main:
            layout.remove_leftovers(config.run_dir)
        summary = _selftrain(config, resume, on_progress)
    if joined:
        distributed.cleanup()
    return summary


def _selftrain(config, resume, on_progress):
    """selftrain()'s work, in a run directory this process may write."""
    _check_run_dir(config, resume)
    # Everything that can be checked is, before the run directory is made.
    labeled, val_set = build_datasets(config)
    pool = None  # the control pseudo-labels nothing: it needs no pool
    if config.student_data == "pseudo":
        pool = open_pool(config.unlabeled or config.data, config.unlabeled_split,
                         config.unlabeled_limit)
    if pool is not None and pool.labelled and pool.dataset.num_classes != labeled.num_classes:
        raise DataError(f"the pool {config.unlabeled} has {pool.dataset.num_classes} classes but "
                        f"the labelled data {config.data} has {labeled.num_classes}; use a pool "
                        "of the same classes, or a folder of images")
    if not resume:
        _check_teacher(config, labeled.num_classes)
    _open_run_dir(config, resume)
    progress = Progress(Path(config.run_dir) / layout.PROGRESS, on_progress)
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
    saved = Path(run_dir) / layout.SELFTRAIN_CONFIG
    if not saved.is_file():
        raise ConfigError(f"{run_dir} holds no self-training run (no selftrain.yaml) to resume")
    resume_changes(overrides, "in another run_dir")  # only the keys a resume may change
    config = load_saved_config(saved, overrides)
    return selftrain(dataclasses.replace(config, run_dir=str(run_dir)), resume=True)
