"""Iteration-based training: SGD with warm-up and poly decay, mixed precision,
channels_last, data-parallel, evaluation every N steps, exact resume.

    ainnoseg train configs/synthetic_quick.yaml lr=0.02
    ainnoseg train --resume runs/synthetic_quick
    torchrun --nproc_per_node=2 -m ainnoseg train configs/... (DDP)
"""

import contextlib
import itertools
import shlex
import sys
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.class_weights import run_class_weight
from ..config import (ConfigError, from_dict, model_options, resume_changes, save_config,
                      with_absolute_paths)
from ..data import (DataError, FolderDataset, MosaicCollate, build_dataset, eval_transforms,
                    train_transforms)
from ..data.check import require_readable
from ..losses import build_loss
from ..inference.precision import resolve_amp
from ..registry import build_model
from ..threads import TrainingThreads
from . import distributed
from ..checkpoints.files import CheckpointError, load_checkpoint, save_checkpoint
from .evaluate import evaluate
from ..runs.heartbeat import Heartbeat
from ..runs.log import RunLog, read_jsonl
from .sampler import SeededDataset, StepBatchSampler
from ..runs.layout import RUN_FILES, remove_leftovers, require_new_or_run, writing


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


# What a run killed before its first checkpoint leaves: nothing a new start would lose.
EARLY_FILES = ("config.yaml", "metrics.jsonl")


def refuse_existing_run(run_dir):
    """Raise a ConfigError if `run_dir` holds a run: a new one there would
    overwrite its log, config and checkpoints."""
    run_dir = Path(run_dir)
    found = [name for name in RUN_FILES if (run_dir / name).exists()]
    if not found:
        return
    elsewhere = "start the new run elsewhere with run_dir=runs/NEW_NAME"
    if "selftrain.yaml" in found:
        raise ConfigError(f"{run_dir} already holds a self-training run: continue it with "
                          f"`ainnoseg selftrain --resume {run_dir}`, or {elsewhere}")
    if "last.pt" in found:
        raise ConfigError(f"{run_dir} already holds a run ({', '.join(found)}): continue it "
                          f"with `ainnoseg train --resume {run_dir}`, or {elsewhere}")
    raise ConfigError(f"{run_dir} already holds files of a run ({', '.join(found)}) but no "
                      f"checkpoint to resume (--resume needs last.pt): {elsewhere}, or "
                      "delete those files to start over there")


def killed_before_first_checkpoint(run_dir):
    """Whether `run_dir` holds only what a training run killed before its
    first checkpoint leaves (EARLY_FILES): nothing to resume, nothing to lose."""
    found = {name for name in RUN_FILES if (Path(run_dir) / name).exists()}
    return bool(found) and found <= set(EARLY_FILES)


def _start_afresh(run_dir):
    """Clear what a run killed before its first checkpoint left, and say so."""
    found = [name for name in EARLY_FILES if (run_dir / name).exists()]
    print(f"note: {run_dir} holds a run that ended before its first checkpoint "
          f"({', '.join(found)}): nothing to resume or lose, so it starts afresh there",
          file=sys.stderr, flush=True)
    for path in [run_dir / "metrics.jsonl", *run_dir.glob("events.out.tfevents.*")]:
        path.unlink(missing_ok=True)


def _resume_state(run_dir, config):
    """The last checkpoint of a run directory, checked against the config."""
    state = load_checkpoint(Path(run_dir) / "last.pt")
    if state["config"]["model"] != config.model:
        raise CheckpointError(
            f"{run_dir}/last.pt holds a {state['config']['model']}, not {config.model}")
    return state


def _load_initial_weights(model, config):
    """Start from another run's weights (not its optimizer or step). From a
    checkpoint of another class count (fine-tuning to a new dataset), the
    layers whose shape depends on it start from random and are named."""
    path = config.init_checkpoint
    state = load_checkpoint(path)
    if state["config"].get("model") != config.model:
        raise CheckpointError(f"checkpoint {path} holds a {state['config'].get('model')} but "
                              f"{config.model} was asked for")
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


def _rng_states(device):
    """The generators a resumed run continues: the CPU's, and the GPU's when
    training on one (dropout draws there)."""
    states = {"rng": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda_rng"] = torch.cuda.get_rng_state(device)
    return states


def _restore_rng_states(state, device):
    torch.set_rng_state(state["rng"])
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)


def _checkpoint(model, optimizer, scaler, config, dataset, step, metrics, best):
    return {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(), "config": _plain(config.to_dict()),
        "class_names": list(dataset.class_names), "palette": [list(c) for c in dataset.palette],
        "step": step, "metrics": metrics, "best_mean_iou": best,
        **_rng_states(next(model.parameters()).device),
    }


def _plain(values):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


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


def _restart_advice(run_dir, config, saved_step):
    """What to do once training diverged: a resume would keep the lr and
    diverge again, so start a new run from the last good weights."""
    lower = f"lr={config.lr / 10:g}"
    if saved_step is None:
        return (f"no checkpoint was written yet: start again with a lower lr ({lower}), "
                "grad_clip=1.0 or amp=off")
    last = run_dir / "last.pt"
    command = shlex.join(["ainnoseg", "train", str(run_dir / "config.yaml"),
                          f"init_checkpoint={last}", lower, f"run_dir={run_dir}_restart"])
    return (f"{last} keeps the last good weights (step {saved_step}): start a new run from "
            f"them with a lower lr, `{command}`, or with grad_clip=1.0 or amp=off")


def _require_finite(model, step, advice):
    """Refuse to save weights a diverged step made NaN or infinite."""
    bad = [name for name, tensor in itertools.chain(model.named_parameters(),
                                                    model.named_buffers())
           if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise FloatingPointError(f"the weights became non-finite at step {step} ({bad[0]}{more}), "
                                 f"so they were not saved; {advice}")


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
    require_new_or_run(run_dir)
    main = distributed.is_main_process()
    with writing(run_dir, enabled=main):
        if main:
            remove_leftovers(run_dir)
        if not (resume or overwrite) and killed_before_first_checkpoint(run_dir):
            if main:
                _start_afresh(run_dir)
        elif not (resume or overwrite):
            refuse_existing_run(run_dir)
        distributed.barrier()  # every process has looked before the main one writes
        if not resume:
            config = with_absolute_paths(config)  # its saved config works from anywhere
        metrics = _train(config, run_dir, resume, datasets, on_step)
    if joined:
        distributed.cleanup()
    return metrics


def _train(config, run_dir, resume, datasets, on_step):
    """train()'s work, in a run directory this process may write."""
    rank, world_size, device = distributed.init_distributed()
    state = _resume_state(run_dir, config) if resume else None
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
    step, best, metrics = 0, -1.0, {}
    if state is None and config.init_checkpoint:
        _load_initial_weights(model, config)
    # On the device first: the optimizer's loaded momentum follows its parameters' device.
    model.to(device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        step, best, metrics = state["step"], state["best_mean_iou"], state["metrics"]
        _restore_rng_states(state, device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    if world_size > 1 and config.sync_bn and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model_without_ddp = model
    if world_size > 1:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    main = distributed.is_main_process()
    log = None
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
        log = RunLog(run_dir, step)
    loader = iter(_make_loader(train_set, config, world_size, rank, step))
    heartbeat = Heartbeat(run_dir, enabled=main)
    planner = TrainingThreads()  # shares the cores with jobs and apps as they come and go
    saved = step if state is not None else None  # the step last.pt holds
    # `with`: the bar ends its line however training ends, so an error is printed on its own
    with tqdm(total=config.iterations, initial=step, disable=not main,
              dynamic_ncols=True) as progress:
        model.train()
        while step < config.iterations:
            lr = learning_rate(config, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            planner.update()
            started = time.perf_counter()
            # Loading seeds torch's generator per sample; without worker processes that
            # happens here, so keep this process's draws (dropout) as they would be.
            with torch.random.fork_rng(devices=[], enabled=config.workers == 0):
                batches = [next(loader) for _ in range(config.accumulate)]
            data_s = time.perf_counter() - started  # waiting for the loader
            try:
                loss, terms, seen = _train_step(model, loss_fn, batches, optimizer, scaler,
                                                config, amp_dtype, device)
            except FloatingPointError as error:
                raise FloatingPointError(f"{error} at step {step + 1}; "
                                         f"{_restart_advice(run_dir, config, saved)}") from None
            step += 1
            speed = seen * world_size / (time.perf_counter() - started)
            progress.update(1)
            if on_step is not None:
                on_step(step, config.iterations)
            heartbeat.beat(step, config.iterations)
            progress.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", img_s=f"{speed:.1f}")
            if main and (step % config.log_every == 0 or step == 1):
                log.write({"step": step, "loss": loss, "lr": lr, "images_per_s": speed,
                           "data_s": data_s, **{f"loss.{k}": v for k, v in terms.items()}})
            evaluated = step % config.eval_every == 0 or step == config.iterations
            if evaluated:
                metrics = evaluate(model_without_ddp.eval(), val_set, config.eval_scales,
                                   config.eval_flip, config.mode, crop_size=config.crop_size,
                                   distributed=world_size > 1, amp=config.amp)
                model.train()
            if main and evaluated:
                log.write({"step": step, **{f"val.{k}": v for k, v in metrics.items()}})
            if main and (evaluated or step % config.checkpoint_every == 0):
                _require_finite(model_without_ddp, step, _restart_advice(run_dir, config, saved))
            if main and evaluated and metrics["mean_iou"] > best:
                best = metrics["mean_iou"]
                save_checkpoint(_checkpoint(model_without_ddp, optimizer, scaler, config,
                                            train_set, step, metrics, best), run_dir / "best.pt")
            if main and (evaluated or step % config.checkpoint_every == 0):
                save_checkpoint(_checkpoint(model_without_ddp, optimizer, scaler, config,
                                            train_set, step, metrics, best), run_dir / "last.pt")
                saved = step
            if evaluated:
                distributed.barrier()
    heartbeat.beat(step, config.iterations, final=True)
    if log is not None:
        log.close()
    return metrics


def resume(run_dir, overrides=()):
    """Continue the run in `run_dir` from its last checkpoint, exactly.

    overrides: key=value strings for the keys in RESUME_OVERRIDABLE only
        (e.g. workers=1 on a smaller machine, data=... where the data moved).
    """
    state = load_checkpoint(Path(run_dir) / "last.pt")
    changes = resume_changes(overrides, f"e.g. with init_checkpoint={run_dir}/last.pt")
    config = from_dict({**state["config"], **changes})
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
    records = read_jsonl(Path(run_dir) / "metrics.jsonl")
    steps = max((record["step"] for record in records), default=0)
    evaluations = [r for r in records if r.get("val.mean_iou") is not None]
    if not evaluations:
        return f"{run_dir}: {steps} iterations, no evaluation yet"
    best = max(evaluations, key=lambda record: record["val.mean_iou"])  # the first best
    boundary = best.get("val.boundary_iou")
    boundary = "-" if boundary is None else f"{100 * boundary:.2f} %"
    return (f"{run_dir}: {steps} iterations; best val mIoU {100 * best['val.mean_iou']:.2f} % "
            f"(Boundary IoU {boundary}) at step {best['step']}, in {Path(run_dir) / 'best.pt'}")
