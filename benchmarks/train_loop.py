"""Does the training loop keep up with the model? Seconds an iteration of
`ainnoseg train` (real data, augmentation, Mosaic, loader workers, logging,
heartbeat) against the bare training step on random tensors of the same
size, measured side by side in one run.

For each loader setting, the loop runs `--warmup` + `--steps` iterations of
the config (no evaluation, no checkpoint inside the window) and its median
iteration is compared with the median bare step (`train_step.make_step`, the
config's precision and layout) on the loop's mean batch: Mosaic adds
mosaic_ratio x batch_size images to each batch on average (0.3 x 8 = 2.4), so
the bare step is timed at the batch sizes around that mean and interpolated.
The target: the loop within 10 % of the step.

    python benchmarks/train_loop.py [--config configs/camvid_ainnoseg_w18s.yaml]
        [--data ../shared/datasets/camvid] [--workers 0 1 2] [--steps 10]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ainnoseg.config import load_config
from ainnoseg.engine.publish import processor_name
from ainnoseg.engine.train import train
from ainnoseg.inference.precision import resolve_amp
from train_step import make_step


def bare_step_seconds(config, num_classes, warmup, steps):
    """Median seconds of a bare step on the loop's mean batch (originals and mosaics)."""
    mean = config.batch_size * (1 + config.mosaic_ratio)
    low = int(mean)
    if mean == low:
        return _bare(config, num_classes, low, warmup, steps)
    below, above = (_bare(config, num_classes, size, warmup, steps) for size in (low, low + 1))
    return below + (mean - low) * (above - below)


def _bare(config, num_classes, batch, warmup, steps):
    bf16 = resolve_amp(config.amp, torch.device("cpu")) == torch.bfloat16
    step = make_step(config, num_classes, batch, bf16, config.channels_last,
                     torch.device("cpu"))
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def loop_step_seconds(config_path, overrides, workers, warmup, steps, root):
    """Median seconds between the loop's iteration ends, after `warmup` of them."""
    total = warmup + steps
    config = load_config(config_path, [*overrides, f"workers={workers}", f"iterations={total}",
                                       f"eval_every={10 * total}", f"checkpoint_every={10 * total}",
                                       f"run_dir={Path(root) / f'workers{workers}'}"])
    ends = []
    train(config, on_step=lambda step, _total: ends.append(time.perf_counter()))
    gaps = [b - a for a, b in zip(ends[warmup - 1:], ends[warmup:])]
    return statistics.median(gaps), config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/camvid_ainnoseg_w18s.yaml")
    parser.add_argument("--data", help="dataset (default: the config's)")
    parser.add_argument("--overrides", nargs="*", default=[], metavar="key=value")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    overrides = list(args.overrides) + ([f"data={args.data}"] if args.data else [])
    config = load_config(args.config, overrides)
    print(f"{config.model}, batch {config.batch_size}, crop {config.crop_size[0]}x"
          f"{config.crop_size[1]}, data {config.data}; {processor_name()}, "
          f"{torch.get_num_threads()} threads", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for workers in args.workers:
            seconds, used = loop_step_seconds(args.config, overrides, workers, args.warmup,
                                              args.steps, root)
            rows.append((f"loop, {workers} loader workers", seconds))
            print(f"loop with {workers} workers: {seconds:.3f} s/it", flush=True)
        from ainnoseg.data import build_dataset

        classes = build_dataset(used.data, used.train_split).num_classes
        bare = bare_step_seconds(used, classes, args.warmup, args.steps)
    print(f"{'variant':<26} {'s/iteration':>11} {'ratio to bare step':>18}")
    print(f"{'bare step':<26} {bare:11.3f} {1.0:18.2f}")
    for name, seconds in rows:
        print(f"{name:<26} {seconds:11.3f} {seconds / bare:18.2f}")
    best = min(seconds for _, seconds in rows)
    print(f"loop / bare step: {best / bare:.2f} at best")


if __name__ == "__main__":
    main()
