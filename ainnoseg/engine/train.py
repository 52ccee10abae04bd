"""Iteration-based training: SGD with warm-up and poly decay, mixed precision,
channels_last, data-parallel, evaluation every N steps, exact resume.

    ainnoseg train configs/synthetic_quick.yaml lr=0.02
    ainnoseg train --resume runs/synthetic_quick
    torchrun --nproc_per_node=2 -m ainnoseg train configs/... (DDP)
"""

import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..checkpoints.files import load_checkpoint, save_checkpoint
from ..config import model_options, resume_changes, save_config, saved_config, with_absolute_paths
from ..data import (DataError, FolderDataset, MosaicCollate, build_dataset, eval_transforms,
                    train_transforms)
from ..data.check import require_readable
from ..inference.precision import resolve_amp
from ..losses import build_loss
from ..registry import build_model
from ..runs import layout
from ..runs.files import read_jsonl
from ..runs.heartbeat import Heartbeat
from ..runs.log import RunLog
from ..threads import TrainingThreads
from . import distributed
from .checkpointing import (load_initial_weights, require_finite, restart_advice,
                            restore_rng_states, resume_state, run_class_weight,
                            training_checkpoint)
from .evaluate import evaluate
from .sampler import SeededDataset, StepBatchSampler
from .snapshots import prepare_snapshots, save_snapshot


def learning_rate(config, step):
    """Linear warm-up to `lr`, then poly decay (1 - t) ** poly_power to 0."""
    if step < config.warmup_iterations:
        return config.lr * (step + 1) / config.warmup_iterations
    progress = (step - config.warmup_iterations) / max(1, config.iterations - config.warmup_iterations)
    return config.lr * (1 - progress) ** config.poly_power


def _make_loader(dataset, config, world_size, rank, start_step):
    micro_batch = config.batch_size // (world_size * config.accumulate)
    if micro_batch < 1 or config.batch_size % (world_size * config.accumulate):
        raise ValueError(
            f"batch_size={config.batch_size} must divide evenly into {world_size} processes x "
            f"{config.accumulate} micro-batches")
    sampler = StepBatchSampler(len(dataset), config.batch_size, world_size, rank,
                               config.accumulate, config.seed, start_step,
                               config.iterations - start_step)
    # Its own generator: starting the loader must not draw from the global one,
    # whose state a resumed run restores for dropout.
    return DataLoader(SeededDataset(dataset), batch_sampler=sampler, num_workers=config.workers,
                      collate_fn=MosaicCollate(config.mosaic_ratio, ignore_index=dataset.ignore_index,
                                               mask_resize=config.mosaic_masks),
                      persistent_workers=config.workers > 0,
                      generator=torch.Generator().manual_seed(config.seed))


def build_datasets(config):
    """(training set with training transforms, val set with eval transforms),
    their files checked first (the data check's fast path): a problem file
    stops the run before it starts, with every problem named."""
    train_set = build_dataset(config.data, config.train_split, transforms=train_transforms(
        config.crop_size, config.scale, config.ratio_range, config.cat_max_ratio))
    val_set = build_dataset(config.data, config.val_split, transforms=eval_transforms())
    for split, dataset in ((config.train_split, train_set), (config.val_split, val_set)):
        if not hasattr(dataset, "num_classes"):
            raise DataError(
                f"the {split} split of {config.data} holds images but no masks, so a model "
                "cannot learn or be scored on it: training needs labelled data (e.g. images/ "
                "and masks/ folders; `ainnoseg data check` lists the layouts). A folder of "
                "images alone is a self-training pool: `ainnoseg selftrain CONFIG "
                f"unlabeled={config.data}`")
    require_readable({f"the {config.train_split} split of {config.data}": train_set,
                      f"the {config.val_split} split": val_set})
    if isinstance(train_set, FolderDataset) and not train_set.split_folders \
            and distributed.is_main_process():
        print(f"warning: {config.data} has no split folders (images/{config.train_split}/ and "
              f"images/{config.val_split}/, with masks/ alike), so training and validation "
              f"both use all its {len(train_set)} images: val metrics then show how well the "
              "model fits them, not how it does on new images. Move some images and masks "
              f"into images/{config.val_split}/ and masks/{config.val_split}/ to hold them out.",
              file=sys.stderr, flush=True)
    if config.val_limit:
        val_set = _FirstSamples(val_set, config.val_limit)
    return train_set, val_set


class _FirstSamples(torch.utils.data.Subset):
    """The first `count` samples, keeping the dataset's class names and palette."""

    def __init__(self, dataset, count):
        super().__init__(dataset, range(min(count, len(dataset))))

    def __getattr__(self, name):
        return getattr(self.dataset, name)


def _train_step(model, loss_fn, batches, optimizer, scaler, config, amp_dtype, device):
    """One optimizer step over `accumulate` micro-batches; returns (loss, terms, images)."""
    total, terms, images_seen = 0.0, {}, 0
    for micro, (images, masks) in enumerate(batches):
        images, masks = images.to(device), masks.to(device)
        if config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        last = micro == len(batches) - 1
        sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
        with sync, torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss, parts = loss_fn(model(images), masks)
            scaler.scale(loss / len(batches)).backward()
        total += loss.detach() / len(batches)
        for name, value in parts.items():
            terms[name] = terms.get(name, 0.0) + value / len(batches)
        images_seen += images.shape[0]
    if distributed.any_process(not torch.isfinite(total)):
        raise FloatingPointError(
            f"the loss became {total.item()} (terms {({k: float(v) for k, v in terms.items()})})")
    if config.grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    logged = distributed.mean_over_processes(
        {"loss": total.item(), **{k: float(v) for k, v in terms.items()}})
    return logged.pop("loss"), logged, images_seen


def train(config, resume=False, datasets=None, on_step=None, overwrite=False):
    """Train `config` in `config.run_dir`; with `resume`, continue its last.pt.

    Args:
        config: a `Config`.
        resume: continue from `run_dir/last.pt` exactly.
        datasets: (train set, val set) to use instead of those `config.data`
            names (self-training passes pseudo-labelled sets this way).
        on_step: called as on_step(step, total) after every step.
        overwrite: start over in a run directory that holds a run; without
            it (and without `resume`) such a directory is refused untouched.
    Returns the last validation metrics. The run directory must be new, empty
    or a run, and is written by one process at a time (see engine/writer.py).
    """
    joined = not distributed.is_distributed()  # leave a caller's process group alone
    distributed.init_distributed()
    run_dir = Path(config.run_dir)
    layout.require_new_or_run(run_dir)
    main = distributed.is_main_process()
    with layout.writing(run_dir, enabled=main):
        if main:
            layout.remove_leftovers(run_dir)
        if not (resume or overwrite) and layout.killed_before_first_checkpoint(run_dir):
            if main:
                layout.start_afresh(run_dir)
        elif not (resume or overwrite):
            layout.refuse_existing_run(run_dir)
        distributed.barrier()  # every process has looked before the main one writes
        if not resume:
            config = with_absolute_paths(config)  # its saved config works from anywhere
        metrics = _train(config, run_dir, resume, datasets, on_step)
    if joined:
        distributed.cleanup()
    return metrics


@dataclass
class _Session:
    """What a training process works with, built once by `_build`."""
    config: object
    run_dir: Path
    model: torch.nn.Module  # DDP-wrapped under torchrun
    model_without_ddp: torch.nn.Module
    loss_fn: object
    optimizer: torch.optim.Optimizer
    scaler: object
    amp_dtype: object
    device: torch.device
    train_set: object
    val_set: object
    world_size: int
    snapshots: dict | None = None  # the val images whose predictions evaluations save


@dataclass
class _Position:
    """Where training stands: its step, best val mIoU, last metrics, and the step last.pt holds."""
    step: int = 0
    best: float = -1.0
    metrics: dict = field(default_factory=dict)
    saved: int | None = None


def _train(config, run_dir, resume, datasets, on_step):
    """train()'s work, in a run directory this process may write."""
    rank, world_size, device = distributed.init_distributed()
    state = resume_state(run_dir, config) if resume else None
    session = _build(config, run_dir, state, datasets, device, world_size)
    position = _Position()
    if state is not None:
        position = _Position(state["step"], state["best_mean_iou"], state["metrics"],
                             saved=state["step"])
        restore_rng_states(state, device)
    main = distributed.is_main_process()
    log = None
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / layout.CONFIG)
        log = RunLog(run_dir, position.step)
        session.snapshots = prepare_snapshots(run_dir, session.val_set, config.snapshot_images,
                                              position.step, config.val_split)
    loader = iter(_make_loader(session.train_set, config, world_size, rank, position.step))
    heartbeat = Heartbeat(run_dir, enabled=main)
    _loop(session, position, loader, log, heartbeat, on_step)
    heartbeat.beat(position.step, config.iterations, final=True)
    if log is not None:
        log.close()
    return position.metrics


def _build(config, run_dir, state, datasets, device, world_size):
    """The datasets, model (its resumed or initial weights, on `device`), loss,
    optimizer and precision of a run."""
    torch.manual_seed(config.seed)
    train_set, val_set = datasets or build_datasets(config)
    model = build_model(config.model, num_classes=train_set.num_classes,
                        pretrained=config.pretrained and state is None,
                        **model_options(config.to_dict()))
    class_weight = run_class_weight(config, run_dir)  # the same on every process
    loss_fn = build_loss(model, config.criterion, config.loss_weights or None,
                         ignore_index=train_set.ignore_index, class_weight=class_weight)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    amp_dtype = resolve_amp(config.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    if state is None and config.init_checkpoint:
        load_initial_weights(model, config)
    # On the device first: the optimizer's loaded momentum follows its parameters' device.
    model.to(device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    if world_size > 1 and config.sync_bn and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model_without_ddp = model
    if world_size > 1:
        model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    return _Session(config, run_dir, model, model_without_ddp, loss_fn, optimizer, scaler,
                    amp_dtype, device, train_set, val_set, world_size)


def _loop(session, position, loader, log, heartbeat, on_step):
    """Train from `position` to the config's iterations: one step, then its
    log record, evaluation and checkpoints, until done."""
    config, main = session.config, distributed.is_main_process()
    planner = TrainingThreads()  # shares the cores with jobs and apps as they come and go
    # `with`: the bar ends its line however training ends, so an error is printed on its own
    with tqdm(total=config.iterations, initial=position.step, disable=not main,
              dynamic_ncols=True) as progress:
        session.model.train()
        while position.step < config.iterations:
            lr = learning_rate(config, position.step)
            for group in session.optimizer.param_groups:
                group["lr"] = lr
            planner.update()
            started = time.perf_counter()
            # Loading seeds torch's generator per sample; without worker processes that
            # happens here, so keep this process's draws (dropout) as they would be.
            with torch.random.fork_rng(devices=[], enabled=config.workers == 0):
                batches = [next(loader) for _ in range(config.accumulate)]
            data_s = time.perf_counter() - started  # waiting for the loader
            try:
                loss, terms, seen = _train_step(session.model, session.loss_fn, batches,
                                                session.optimizer, session.scaler, config,
                                                session.amp_dtype, session.device)
            except FloatingPointError as error:
                advice = restart_advice(session.run_dir, config, position.saved)
                raise FloatingPointError(f"{error} at step {position.step + 1}; {advice}") from None
            position.step += 1
            speed = seen * session.world_size / (time.perf_counter() - started)
            progress.update(1)
            if on_step is not None:
                on_step(position.step, config.iterations)
            heartbeat.beat(position.step, config.iterations)
            progress.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", img_s=f"{speed:.1f}")
            if main and (position.step % config.log_every == 0 or position.step == 1):
                log.write({"step": position.step, "loss": loss, "lr": lr, "images_per_s": speed,
                           "data_s": data_s, **{f"loss.{k}": v for k, v in terms.items()}})
            _evaluate_and_save(session, position, log)


def _evaluate_and_save(session, position, log):
    """After a step: evaluate when due (logging the scores and saving the
    predictions of the chosen val images), and save best.pt and last.pt when
    due, with finite weights only."""
    config, step, main = session.config, position.step, distributed.is_main_process()
    evaluated = step % config.eval_every == 0 or step == config.iterations
    if evaluated:
        position.metrics = evaluate(session.model_without_ddp.eval(), session.val_set,
                                    config.eval_scales, config.eval_flip, config.mode,
                                    crop_size=config.crop_size,
                                    distributed=session.world_size > 1, amp=config.amp)
        if main and session.snapshots:
            save_snapshot(session.model_without_ddp, session.val_set, session.snapshots,
                          session.run_dir, step, config)
        session.model.train()
    saving = evaluated or step % config.checkpoint_every == 0
    if main and evaluated:
        log.write({"step": step, **{f"val.{k}": v for k, v in position.metrics.items()}})
    if main and saving:
        require_finite(session.model_without_ddp, step,
                        restart_advice(session.run_dir, config, position.saved))
    if main and evaluated and position.metrics["mean_iou"] > position.best:
        position.best = position.metrics["mean_iou"]
        save_checkpoint(_checkpoint_of(session, position), session.run_dir / layout.BEST)
    if main and saving:
        save_checkpoint(_checkpoint_of(session, position), session.run_dir / layout.LAST)
        position.saved = step
    if evaluated:
        distributed.barrier()


def _checkpoint_of(session, position):
    return training_checkpoint(session.model_without_ddp, session.optimizer, session.scaler,
                       session.config, session.train_set, position.step, position.metrics,
                       position.best)


def resume(run_dir, overrides=()):
    """Continue the run in `run_dir` from its last checkpoint, exactly.

    overrides: key=value strings for the keys in RESUME_OVERRIDABLE only
        (e.g. workers=1 on a smaller machine, data=... where the data moved).
    """
    state = load_checkpoint(Path(run_dir) / layout.LAST)
    changes = resume_changes(overrides, f"e.g. with init_checkpoint={run_dir}/last.pt")
    config = saved_config({**state["config"], **changes})
    config.run_dir = str(run_dir)
    if state["step"] >= config.iterations:
        print(f"{run_dir} is finished: {state['step']} of {config.iterations} iterations done, "
              "nothing to resume. To train it longer, start a new run from its weights: "
              f"ainnoseg train CONFIG init_checkpoint={Path(run_dir) / 'last.pt'} "
              "run_dir=runs/NEW_NAME", flush=True)
        return state["metrics"]
    return train(config, resume=True)


def run_summary(run_dir):
    """One line on what a run reached: its iterations, its best val mIoU and
    Boundary IoU with their step, and where best.pt is."""
    records = read_jsonl(Path(run_dir) / layout.METRICS_LOG)
    steps = max((record["step"] for record in records), default=0)
    evaluations = [r for r in records if r.get("val.mean_iou") is not None]
    if not evaluations:
        return f"{run_dir}: {steps} iterations, no evaluation yet"
    best = max(evaluations, key=lambda record: record["val.mean_iou"])  # the first best
    boundary = best.get("val.boundary_iou")
    boundary = "-" if boundary is None else f"{100 * boundary:.2f} %"
    return (f"{run_dir}: {steps} iterations; best val mIoU {100 * best['val.mean_iou']:.2f} % "
            f"(Boundary IoU {boundary}) at step {best['step']}, in {Path(run_dir) / 'best.pt'}")
