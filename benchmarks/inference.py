"""Inference speed: the fast configuration against the plain model, side by side.

For each model, one 1x3xHxW forward pass in eval mode (150 classes, random
weights, 2 threads) is timed:
  plain     the way the reference implementations run: eager, float32,
            NCHW, batch norms as separate layers;
  fast      `optimize_for_inference` (folded batch norms, channels_last,
            bf16 autocast where the CPU has AMX / AVX512-BF16);
  compiled  fast + torch.compile (with --compile; compile time printed);
  onnxruntime  the plain model exported to ONNX (with --onnx), fp32;
  and with --ablation each ingredient of fast alone or left out:
            fp32+cl, fp32+fold+cl, bf16 (NCHW), bf16+cl (no folding), and
            bf16+cl-input: the plain model under bf16 autocast given
            channels_last inputs, as `ainnoseg.predict` runs any model.
Rows give the median time per image, its ratio to plain, the extra peak
memory of the forward pass and its ratio to plain, and how far the logits
are from plain's (largest difference relative to the largest logit, and the
share of pixels with the same argmax).

    python benchmarks/inference.py [--models hrnetv2_w48 ...] [--size 512 512]
                                   [--repeats 3] [--compile] [--onnx] [--ablation]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from memory import configure_allocator, peak_extra_bytes
import ainnoseg
from ainnoseg.inference.fast import optimize_for_inference

MODELS = ("hrnetv2_w48", "ocrnet_hrnet_w48", "ainnoseg_w48")
ABLATION = {
    "fp32+cl": dict(amp="off", fold_bn=False),
    "fp32+fold+cl": dict(amp="off"),
    "bf16": dict(amp="bf16", channels_last=False, fold_bn=False),
    "bf16+cl": dict(amp="bf16", fold_bn=False),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    parser.add_argument("--num-classes", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="add fast + torch.compile")
    parser.add_argument("--onnx", action="store_true", help="add the ONNX export in onnxruntime")
    parser.add_argument("--ablation", action="store_true",
                        help="add fast's ingredients alone and fast without folding")
    return parser.parse_args()


def torch_runner(model, images):
    def run():
        with torch.inference_mode():
            return model(images)["out"]
    return run


def autocast_runner(model, images):
    """The unprepared model as `ainnoseg.predict` runs it by default."""
    images = images.contiguous(memory_format=torch.channels_last)

    def run():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return model(images)["out"].float()
    return run


def onnx_runner(model, images, threads, folder):
    import onnxruntime

    from ainnoseg.inference.export import export_onnx

    path = export_onnx(model, Path(folder) / "model.onnx", tuple(images.shape[-2:]))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_cpu_mem_arena = False  # so its peak memory is measured, not preallocated
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    feed = {"images": images.numpy()}
    return lambda: torch.from_numpy(session.run(None, feed)[0])


def seconds(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def variants(model, images, args, folder):
    """name -> a function running one forward pass; the first is the plain model."""
    runners = {"plain": torch_runner(model, images)}
    fast = optimize_for_inference(model)
    runners["fast"] = torch_runner(fast, images)
    if args.ablation:
        for name, options in ABLATION.items():
            runners[name] = torch_runner(optimize_for_inference(model, **options), images)
        runners["bf16+cl-input"] = autocast_runner(model, images)
    if args.compile:
        compiled = optimize_for_inference(model, compile=True)
        start = time.perf_counter()
        torch_runner(compiled, images)()
        print(f"  torch.compile took {time.perf_counter() - start:.0f} s (first call)",
              flush=True)
        runners["compiled"] = torch_runner(compiled, images)
    if args.onnx:
        start = time.perf_counter()
        runners["onnxruntime"] = onnx_runner(model, images, args.threads, folder)
        print(f"  ONNX export took {time.perf_counter() - start:.0f} s", flush=True)
    return runners, fast.amp_dtype


def compare(name, runners, repeats):
    """Print one row per variant: times interleaved, then memory and agreement."""
    outputs = {key: run() for key, run in runners.items()}  # warm-up, and the outputs
    times = {key: [] for key in runners}
    for _ in range(repeats):
        for key, run in runners.items():
            times[key].append(seconds(run))
    memory = {key: peak_extra_bytes(run)[1] for key, run in runners.items()}
    reference = outputs["plain"].float()
    scale = reference.abs().max()
    for key in runners:
        time_ = statistics.median(times[key])
        difference = (outputs[key].float() - reference).abs().max() / scale
        same = (outputs[key].argmax(1) == reference.argmax(1)).float().mean()
        print(f"{name:<17} {key:<13} {time_:8.3f} {time_ / statistics.median(times['plain']):6.2f} "
              f"{memory[key] / 2**20:9.0f} {memory[key] / memory['plain']:6.2f} "
              f"{difference:10.1e} {100 * same:7.2f}%", flush=True)


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    configure_allocator()
    images = torch.randn(1, 3, *args.size)
    print(f"1x3x{args.size[0]}x{args.size[1]}, {args.num_classes} classes, random weights, "
          f"{args.threads} threads, median of {args.repeats} interleaved runs")
    header_printed = False
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            torch.manual_seed(0)
            model = ainnoseg.build_model(name, num_classes=args.num_classes).eval()
            runners, amp_dtype = variants(model, images, args, folder)
            if not header_printed:
                print(f"fast = folded batch norms + channels_last + autocast {amp_dtype}")
                print(f"{'model':<17} {'variant':<13} {'s/image':>8} {'ratio':>6} "
                      f"{'extra MiB':>9} {'ratio':>6} {'max diff':>10} {'argmax':>8}")
                header_printed = True
            compare(name, runners, args.repeats)


if __name__ == "__main__":
    main()
