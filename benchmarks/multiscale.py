"""The paper's test-time scales on one machine: `ainnoseg_w48` 7-scale + flip
inference of one large image, with our position attention and with DANet's
materialised one.

Ours runs in the fast configuration (`optimize_for_inference`) through
`ainnoseg.predict`, scales 0.5-2.0 with the flips batched; the time and the
extra peak memory (resident memory above the loaded model) are printed. The
naive PAM keeps the N x N energy and attention maps of every image of the
batch (float32 in DANet's code): that need is worked out per scale, and the
naive model is run only if its largest scale fits in the memory available
now; otherwise the analytic need is printed instead of running out of memory.

    python benchmarks/multiscale.py [--size 1024 1280] [--scales 0.5 ... 2.0]
"""

import argparse
import math
import time

import torch

from memory import configure_allocator, peak_extra_bytes
import ainnoseg
from ainnoseg.inference import PAPER_SCALES
from ainnoseg.inference.fast import optimize_for_inference

FEATURE_STRIDE = 4  # HRNetV2's output, where the dual attention runs
NAIVE_BYTES_PER_ELEMENT = 4 * 2  # float32 energy + its softmax, both N x N


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ainnoseg_w48")
    parser.add_argument("--size", type=int, nargs=2, default=(1024, 1280), metavar=("H", "W"))
    parser.add_argument("--scales", type=float, nargs="+", default=list(PAPER_SCALES))
    parser.add_argument("--num-classes", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def available_bytes():
    with open("/proc/meminfo") as meminfo:
        fields = dict(line.split(":", 1) for line in meminfo)
    return int(fields["MemAvailable"].split()[0]) * 1024


def naive_attention_bytes(size, scale, stride, batch):
    """Bytes of the N x N maps the materialised PAM holds at one scale."""
    height, width = (math.ceil(round(side * scale) / stride) * stride for side in size)
    positions = (height // FEATURE_STRIDE) * (width // FEATURE_STRIDE)
    return positions, batch * positions ** 2 * NAIVE_BYTES_PER_ELEMENT


def timed(function):
    start = time.perf_counter()
    _, extra = peak_extra_bytes(function, exact=False)  # exact mode would slow it down
    return time.perf_counter() - start, extra


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    configure_allocator()
    torch.manual_seed(0)
    image = torch.randn(1, 3, *args.size)
    model = ainnoseg.build_model(args.model, num_classes=args.num_classes).eval()
    scales = tuple(args.scales)
    print(f"{args.model}, {args.num_classes} classes, one {args.size[0]}x{args.size[1]} image, "
          f"scales {', '.join(f'{s:g}' for s in scales)} + flip (batch 2 per scale), "
          f"{args.threads} threads, {available_bytes() / 2**30:.1f} GiB available")

    print(f"\n{'scale':>5} {'positions':>10} {'naive N x N maps':>17}")
    needs = []
    for scale in scales:
        positions, need = naive_attention_bytes(args.size, scale, model.stride, batch=2)
        needs.append(need)
        print(f"{scale:5g} {positions:10d} {need / 2**30:13.1f} GiB")
    largest = max(needs)

    fast = optimize_for_inference(model)
    seconds, extra = timed(lambda: ainnoseg.predict(fast, image, scales=scales, flip=True))
    print(f"\nours  (fast: folded BN, channels_last, autocast {fast.amp_dtype}): "
          f"{seconds:.0f} s, peak extra memory {extra / 2**30:.2f} GiB")

    if largest > 0.8 * available_bytes():
        print(f"naive (DANet's materialised PAM): not run; its largest scale needs "
              f"{largest / 2**30:.1f} GiB for the attention maps alone, "
              f"{largest / extra:.0f}x our whole peak, over the "
              f"{available_bytes() / 2**30:.1f} GiB available")
        return
    naive = ainnoseg.build_model(args.model, num_classes=args.num_classes, naive_pam=True)
    naive.load_state_dict(model.state_dict())
    naive_fast = optimize_for_inference(naive.eval())
    naive_seconds, naive_extra = timed(
        lambda: ainnoseg.predict(naive_fast, image, scales=scales, flip=True))
    print(f"naive (DANet's materialised PAM, same fast configuration): {naive_seconds:.0f} s, "
          f"peak extra memory {naive_extra / 2**30:.2f} GiB")
    print(f"ours / naive: time {seconds / naive_seconds:.2f}, memory {extra / naive_extra:.3f}")


if __name__ == "__main__":
    main()
