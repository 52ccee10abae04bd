"""Pseudo-labelling throughput: images/s of a teacher labelling a pool,
single-scale and multi-scale + flip (the paper's 7 scales unless --scales)
side by side.

Measured end to end as `ainnoseg selftrain` labels: images read and
normalised by DataLoader workers, batched forwards of the teacher in the fast
inference configuration (`optimize_for_inference`: folded batch norms,
channels_last, bf16 where amp=auto picks it), the threshold, and one PNG
written per image.
The model has random weights; the images are CamVid-size synthetic scenes
(360x480) unless --data names a folder of images or a dataset.

    python benchmarks/pseudo_label.py [--model ainnoseg_w18s] [--images 8] [--batch 4]
                                      [--scales 0.75 1 1.25]
    torchrun --nproc_per_node=2 benchmarks/pseudo_label.py   (each process labels a share)
"""

import argparse
import tempfile
import time

import torch

from ainnoseg.data import Pool, SyntheticScenes, open_pool
from ainnoseg.engine import distributed
from ainnoseg.engine.pseudo_label import label_pool
from ainnoseg.inference import PAPER_SCALES
from ainnoseg.inference.fast import optimize_for_inference
from ainnoseg.inference.precision import AMP_SETTINGS
from ainnoseg.registry import build_model



def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ainnoseg_w18s")
    parser.add_argument("--num-classes", type=int, default=11)
    parser.add_argument("--images", type=int, default=8, help="pool images to label (default 8)")
    parser.add_argument("--batch", type=int, default=4, help="images per forward (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2)")
    parser.add_argument("--size", type=int, nargs=2, default=(360, 480), metavar=("H", "W"),
                        help="synthetic image size (default CamVid's 360 480)")
    parser.add_argument("--data", help="a folder of images or a dataset (its --split) instead")
    parser.add_argument("--split", default="test")
    parser.add_argument("--amp", default="auto", choices=AMP_SETTINGS)
    parser.add_argument("--scales", type=float, nargs="+", default=list(PAPER_SCALES),
                        metavar="S", help="scales of the multi-scale + flip setting "
                                          "(default: the paper's 7)")
    return parser.parse_args()


def seconds_to_label(model, pool, indices, scales, flip, amp, args):
    """Wall time of labelling `indices` into a fresh folder, all processes done."""
    with tempfile.TemporaryDirectory() as out:
        distributed.barrier()
        start = time.perf_counter()
        label_pool(model, pool, out, scales=scales, flip=flip, amp=amp, batch_size=args.batch,
                   workers=args.workers, indices=indices)
        distributed.barrier()
        return time.perf_counter() - start


def main():
    args = parse_args()
    rank, world_size, device = distributed.init_distributed()
    if args.data:
        pool = open_pool(args.data, args.split, args.images)
    else:
        pool = Pool.from_dataset(SyntheticScenes("test", size=tuple(args.size), length=args.images))
    model = build_model(args.model, num_classes=args.num_classes).eval().to(device)
    model = optimize_for_inference(model, amp=args.amp)
    indices = range(rank, len(pool), world_size)
    seconds_to_label(model, pool, indices[:1], (1.0,), False, args.amp, args)  # warm-up
    results = []
    multi_scale = f"{len(args.scales)}-scale + flip"
    settings = (("single-scale", (1.0,), False), (multi_scale, tuple(args.scales), True))
    for name, scales, flip in settings:
        seconds = seconds_to_label(model, pool, indices, scales, flip, args.amp, args)
        results.append((name, len(pool) / seconds, seconds / len(pool)))
    if distributed.is_main_process():
        height, width = pool.image(0).shape[-2:]
        print(f"{args.model} (random weights), {len(pool)} images of {height}x{width}, batch "
              f"{args.batch}, {args.workers} workers, {world_size} process(es) x "
              f"{torch.get_num_threads()} threads, autocast {model.amp_dtype}, {device}")
        print(f"{'labelling':<16} {'images/s':>9} {'s/image':>9}")
        for name, speed, per_image in results:
            print(f"{name:<16} {speed:9.2f} {per_image:9.2f}")
        print(f"{multi_scale} costs {results[0][1] / results[1][1]:.1f}x single-scale")
    distributed.cleanup()


if __name__ == "__main__":
    main()
