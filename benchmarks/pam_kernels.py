"""Position attention on the CPU in bf16: our chunked kernel against SDPA's
flash kernel on zero-padded inputs, which `position_attention` takes on CPUs
with AMX tiles.

Prints, at the shapes our models train and infer at, the median time of each
(measured interleaved in this one run), chunked / flash as a ratio, and each
one's largest error against the exact result (float64, relative to the
output's largest value).

    python benchmarks/pam_kernels.py [--repeats 3] [--threads 2]

Default shapes: the PAM of AinnoSeg-W18-Small (67 channels, query/key 8) and
-W48 (180) training on a batch of 8 256x320 crops (64x80 positions at stride
4) and inferring on a 360x480 CamVid frame at scales 1 and 2; of DANet-R18
(128 channels, stride 8) and -R50 (512) on the same batch and frame x2.
"""

import argparse
import statistics
import time

import torch

from ainnoseg.engine.publish import processor_name
from ainnoseg.models import attention

# (what, batch, positions, value channels, training)
SHAPES = [
    ("ainnoseg_w18s training, batch 8 at 256x320", 8, 64 * 80, 67, True),
    ("ainnoseg_w18s inference, 360x480 frame", 1, 90 * 120, 67, False),
    ("ainnoseg_w18s inference, frame x2", 1, 180 * 240, 67, False),
    ("ainnoseg_w48 training, batch 8 at 256x320", 8, 64 * 80, 180, True),
    ("danet_r18 training, batch 8 at 256x320", 8, 32 * 40, 128, True),
    ("danet_r18 inference, frame x2", 1, 90 * 120, 128, False),
    ("danet_r50 training, batch 8 at 256x320", 8, 32 * 40, 512, True),
    ("danet_r50 inference, frame x2", 1, 90 * 120, 512, False),
]

def chunked(query, key, value):
    if torch.is_grad_enabled():
        return attention._ChunkedAttention.apply(query, key, value)
    return attention._forward_chunks(query, key, value, keep_logsumexp=False)[0]


KERNELS = {"chunked": chunked, "flash": attention.flash_position_attention}


def run(kernel, inputs, training):
    if training:
        for tensor in inputs:
            tensor.grad = None
        kernel(*inputs).float().sum().backward()
    else:
        with torch.no_grad():
            kernel(*inputs)


def largest_error(kernel, inputs):
    with torch.no_grad():
        exact = attention.naive_position_attention(*(t.double() for t in inputs))
        return ((kernel(*inputs).double() - exact).abs().max() / exact.abs().max()).item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="positions scaled by this (a small value for a quick check)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"PAM in bf16 on {processor_name()}, {args.threads} threads, "
          f"median of {args.repeats} interleaved runs (training: forward + backward)")
    print(f"{'shape':<46} {'chunked s':>9} {'flash s':>8} {'chunked / flash':>15} "
          f"{'chunked err':>11} {'flash err':>9}")
    for what, batch, positions, channels, training in SHAPES:
        positions = max(16, int(positions * args.scale))
        inputs = [torch.randn(batch, positions, width).bfloat16().requires_grad_(training)
                  for width in (max(1, channels // 8), max(1, channels // 8), channels)]
        errors = {}
        if positions <= 12_000:  # the exact float64 map fits in memory
            errors = {name: largest_error(kernel, inputs) for name, kernel in KERNELS.items()}
        times = {name: [] for name in KERNELS}
        for name, kernel in KERNELS.items():
            run(kernel, inputs, training)  # warm-up
        for _ in range(args.repeats):
            for name, kernel in KERNELS.items():
                start = time.perf_counter()
                run(kernel, inputs, training)
                times[name].append(time.perf_counter() - start)
        median = {name: statistics.median(values) for name, values in times.items()}
        error_cells = (f"{errors['chunked']:11.4f} {errors['flash']:9.4f}" if errors
                       else f"{'-':>11} {'-':>9}")
        print(f"{what:<46} {median['chunked']:9.3f} {median['flash']:8.3f} "
              f"{median['chunked'] / median['flash']:15.2f} {error_cells}", flush=True)


if __name__ == "__main__":
    main()
