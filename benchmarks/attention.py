"""Our position attention (PAM) against DANet's materialised formula.

Prints, for feature maps of 64x64, 128x128 and 130x130 positions with DANet's
C=512 channels, the time and the extra peak memory of inference and of a
training step (forward + backward), both measured side by side in this one
process, and ours / naive as ratios; in fp32, and under bf16 autocast (the
fast path on CPUs with AMX), where both run the same precision.

    python benchmarks/attention.py [--sizes 64 128 130] [--precisions fp32 bf16]
"""

import argparse
import contextlib
import statistics
import time

import torch

from memory import configure_allocator, peak_extra_bytes
from ainnoseg.models.attention import PositionAttention

CHANNELS = 512  # DANet: 2048 // 4


def inference(module, x):
    with torch.no_grad():
        module(x)


def training_step(module, x):
    x = x.detach().requires_grad_()
    out = module(x)
    out.backward(torch.ones_like(out))


def seconds(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def autocast(precision):
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def measure(modules, step, x, repeats):
    """Median time and peak extra memory of `step` for each module, interleaved."""
    times = {name: [] for name in modules}
    for _ in range(repeats):
        for name, module in modules.items():
            times[name].append(seconds(lambda: step(module, x)))
    memory = {name: peak_extra_bytes(lambda: step(module, x))[1]
              for name, module in modules.items()}
    return {name: statistics.median(times[name]) for name in modules}, memory


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 130])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"],
                        choices=["fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    configure_allocator()
    torch.manual_seed(0)
    ours = PositionAttention(CHANNELS)
    naive = PositionAttention(CHANNELS, naive=True)
    naive.load_state_dict(ours.state_dict())
    torch.nn.init.constant_(ours.gamma, 1.0)
    torch.nn.init.constant_(naive.gamma, 1.0)
    modules = {"naive": naive, "ours": ours}

    print(f"PAM, C={CHANNELS}, batch 1, {args.threads} threads, "
          f"median of {args.repeats} interleaved runs; ratios are ours / naive")
    print(f"{'precision':>9} {'positions':>9} {'mode':>9} {'naive s':>8} {'ours s':>8} "
          f"{'time ratio':>10} {'naive MB':>9} {'ours MB':>8} {'mem ratio':>9}")
    for precision in args.precisions:
        for side in args.sizes:
            x = torch.randn(1, CHANNELS, side, side)
            with torch.no_grad():
                torch.testing.assert_close(ours(x), naive(x), rtol=1e-4, atol=1e-4)
            for mode, step in (("inference", inference), ("training", training_step)):
                with autocast(precision):
                    step(ours, x)  # warm-up
                    times, memory = measure(modules, step, x, args.repeats)
                print(f"{precision:>9} {f'{side}x{side}':>9} {mode:>9} {times['naive']:8.3f} "
                      f"{times['ours']:8.3f} {times['ours'] / times['naive']:10.2f} "
                      f"{memory['naive'] / 2**20:9.0f} {memory['ours'] / 2**20:8.0f} "
                      f"{memory['ours'] / memory['naive']:9.3f}", flush=True)

if __name__ == "__main__":
    main()
