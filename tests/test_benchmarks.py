"""Every benchmark script runs end to end on tiny settings (no timing is checked)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

RUNS = {
    "attention": ["--sizes", "8", "--repeats", "1", "--precisions", "fp32"],
    "pam_kernels": ["--scale", "0.01", "--repeats", "1"],
    "boundary_metrics": ["--size", "64", "80", "--images", "2", "--classes", "5",
                         "--repeats", "1"],
    "inference": ["--models", "hrnetv2_w18s", "--size", "64", "64", "--repeats", "1",
                  "--num-classes", "3", "--ablation"],
    "multiscale": ["--model", "ainnoseg_w18s", "--size", "64", "64", "--scales", "0.5", "1.0",
                   "--num-classes", "3"],
    "train_step": ["--config", "configs/synthetic_quick.yaml", "--batch", "1",
                   "--variants", "fp32", "--steps", "1", "--overrides", "ocr_channels=32"],
    "data": ["--crop", "64", "64", "--scale", "96", "128", "--batch", "2", "--batches", "1",
             "--steps", "1"],
    "pseudo_label": ["--model", "hrnetv2_w18s", "--images", "2", "--batch", "2",
                     "--workers", "0", "--size", "64", "80"],
    "cam_sharpness": ["--model", "synthetic/ainnoseg_w18s", "--image",
                      "assets/examples/images/" + sorted(
                          (BENCHMARKS.parent / "assets/examples/images").glob("*.png"))[0].name,
                      "--crop", "64", "80", "--scales", "0.5", "--threads", "1"],
    "train_loop": ["--config", "configs/synthetic_tiny.yaml", "--workers", "0", "1",
                   "--warmup", "1", "--steps", "2"],
    "contention": ["--overrides", "crop_size=[64,80]", "scale=[64,80]", "batch_size=2",
                   "workers=0", "model=hrnetv2_w18s", "--warmup", "1", "--steps", "1",
                   "--repeats", "1", "--upload-size", "64", "80",
                   "--models", "synthetic/hrnetv2_w18s"],
    "plan_throughput": ["--config", "configs/synthetic_tiny.yaml", "--overrides", "workers=0",
                        "--warmup", "1", "--steps", "1", "--rounds", "1"],
    "wait_policy": ["--config", "configs/synthetic_tiny.yaml", "--overrides", "workers=0",
                    "--warmup", "1", "--steps", "1", "--rounds", "1"],
    "terminal_command": ["--config", "configs/synthetic_tiny.yaml", "--overrides", "workers=0",
                         "--eval", "synthetic/hrnetv2_w18s", "assets/examples", "--warmup", "1",
                         "--steps", "1", "--settle", "0", "--repeats", "1"],
}

EXPECTED = {
    "attention": "inference",
    "pam_kernels": "chunked / flash",
    "boundary_metrics": "per-class / ours",
    "inference": "bf16+cl-input",
    "multiscale": "ours / naive",
    "train_step": ("ainnoseg_w18s ocr_channels=32, batch 1", "one training step"),
    "data": "ainnoseg_w18s training",
    "pseudo_label": "7-scale + flip costs",
    "contention": "policy on / off",
    "plan_throughput": "side by side / alone",
    "terminal_command": "eval / alone",
    "wait_policy": "PASSIVE / default",
    "train_loop": "loop / bare step",
    "cam_sharpness": "training crop 64x80",
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_benchmark_runs(name):
    result = subprocess.run([sys.executable, str(BENCHMARKS / f"{name}.py"), *RUNS[name]],
                            capture_output=True, text=True, timeout=600,
                            cwd=BENCHMARKS.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = EXPECTED[name]
    for text in (expected,) if isinstance(expected, str) else expected:
        assert text in result.stdout
