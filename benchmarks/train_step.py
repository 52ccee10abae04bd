"""Training throughput of a config's model on this machine, and how close it
comes to the machine's measured matrix-multiply peak.

Prints images/s of a full training step (forward, loss, backward, SGD) for
fp32 and bf16 autocast, each with channels_last off and on, measured side by
side in one run; the step's FLOPs (PyTorch's FLOP counter) and the share of
the peak GEMM rate (4096^3, same precision) each variant reaches.

    python benchmarks/train_step.py [--config configs/camvid_ainnoseg_w18s.yaml] [--steps 3]
    python benchmarks/train_step.py --overrides ocr_channels=256   (config key=value)
    python benchmarks/train_step.py --config configs/ade20k_ainnoseg_w48.yaml --batch 2 \
        --variants bf16+cl          (the paper's model and crop; 2 images fit this CPU)
    python benchmarks/train_step.py ... --device cuda    (on a GPU: bf16 / fp16 autocast)
"""

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

import ainnoseg
from ainnoseg.config import load_config, model_options


VARIANTS = ("fp32", "fp32+cl", "bf16", "bf16+cl")


def gemm_peak(dtype, device, size=4096, repeats=3):
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    a @ b
    best = min(_seconds(lambda: a @ b, device) for _ in range(repeats))
    return 2 * size ** 3 / best


def _seconds(function, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    function()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def make_step(config, num_classes, batch, bf16, channels_last, device):
    torch.manual_seed(0)
    model = ainnoseg.build_model(config.model, num_classes=num_classes,
                                 **model_options(config.to_dict())).train().to(device)
    loss_fn = ainnoseg.build_loss(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    images = torch.randn(batch, 3, *config.crop_size, device=device)
    labels = torch.randint(0, num_classes, (batch, *config.crop_size), device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, _ = loss_fn(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def step_flops(step):
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/camvid_ainnoseg_w18s.yaml")
    parser.add_argument("--num-classes", type=int, default=11)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, help="images per step (default: the config's)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS,
                        help="precision and layout (+cl: channels_last) to measure")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides, e.g. ocr_channels=256")
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)
    device = torch.device(args.device)
    batch = args.batch or config.batch_size
    device_name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"CPU, {torch.get_num_threads()} threads")
    peaks = {False: gemm_peak(torch.float32, device), True: gemm_peak(torch.bfloat16, device)}
    options = "".join(f" {key}={value}" for key, value in model_options(config.to_dict()).items())
    height, width = config.crop_size
    print(f"{config.model}{options}, batch {batch}, crop {height}x{width}, "
          f"{device_name}; GEMM peak fp32 {peaks[False] / 1e9:.0f} GFLOP/s, "
          f"bf16 {peaks[True] / 1e9:.0f} GFLOP/s")
    flops = None
    print(f"{'precision':>9} {'channels_last':>13} {'images/s':>9} {'GFLOP/s':>8} {'of peak':>8}")
    for variant in args.variants:
        bf16, channels_last = variant.startswith("bf16"), variant.endswith("+cl")
        step = make_step(config, args.num_classes, batch, bf16, channels_last, device)
        flops = flops or step_flops(step)
        step()  # warm-up
        seconds = min(_seconds(step, device) for _ in range(args.steps))
        rate = flops / seconds
        print(f"{'bf16' if bf16 else 'fp32':>9} {str(channels_last):>13} "
              f"{batch / seconds:9.2f} {rate / 1e9:8.0f} "
              f"{100 * rate / peaks[bf16]:7.1f}%", flush=True)
    print(f"one training step: {flops / 1e9:.0f} GFLOP")


if __name__ == "__main__":
    main()
