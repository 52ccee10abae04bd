"""Is data loading what limits training? Loader throughput next to model speed.

Prints samples per second of the training pipeline (multi-scale rescale, crop,
flip, photometric distortion, normalisation, Mosaic at 0.3) with 0 and 2
worker processes, and the samples per second of an `ainnoseg_w18s` training
step on the same crop size, in fp32 and with bf16 autocast + channels_last.

    python benchmarks/data.py [--data synthetic|PATH] [--crop 256 320] [--batch 8]
"""

import argparse
import time

import torch
from torch.utils.data import DataLoader

from ainnoseg.config import load_config
from ainnoseg.data import MosaicCollate, build_dataset, train_transforms
from train_step import make_step


def loader_rate(dataset, batch_size, workers, batches):
    """Samples (originals and mosaics) per second after one warm-up batch."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        collate_fn=MosaicCollate(0.3), drop_last=True,
                        persistent_workers=workers > 0)
    iterator = iter(loader)
    next(iterator)
    samples, start = 0, time.perf_counter()
    for _ in range(batches):
        images, _ = next(iterator)
        samples += images.shape[0]
    return samples / (time.perf_counter() - start)


def training_rate(num_classes, batch_size, crop, fast, steps):
    config = load_config(None, ["model=ainnoseg_w18s", f"batch_size={batch_size}",
                                f"crop_size=[{crop[0]}, {crop[1]}]"])
    step = make_step(config, num_classes, batch_size, bf16=fast, channels_last=fast,
                     device=torch.device("cpu"))
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch_size * steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic", help="'synthetic' or a dataset folder")
    parser.add_argument("--crop", type=int, nargs=2, default=[256, 320])
    parser.add_argument("--scale", type=int, nargs=2, default=[360, 480],
                        help="base scale the rescale ratio (0.75-1.5) multiplies")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    transforms = train_transforms(args.crop, args.scale, ratio_range=(0.75, 1.5))
    dataset = build_dataset(args.data, split="train", transforms=transforms)
    print(f"data {args.data}: {len(dataset)} training samples, crop {args.crop[0]}x{args.crop[1]}, "
          f"batch {args.batch}, Mosaic 0.3, {torch.get_num_threads()} threads")
    for workers in (0, 2):
        rate = loader_rate(dataset, args.batch, workers, args.batches)
        print(f"  loader, {workers} workers:            {rate:7.1f} samples/s")
    for fast in (False, True):
        rate = training_rate(dataset.num_classes, args.batch, args.crop, fast, args.steps)
        name = "bf16 + channels_last" if fast else "fp32                "
        print(f"  ainnoseg_w18s training, {name}: {rate:7.1f} samples/s")


if __name__ == "__main__":
    main()
