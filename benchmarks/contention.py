"""Training, the apps' predictions and a second job sharing the machine, with
the thread policy (`ainnoseg.threads`) on and off, measured in one run.

- (a) a training job's seconds an iteration alone, and while this process
  serves a steady stream of the dashboard's predictions (an upload-sized image,
  640 x 480, segmented by two checkpoints, as the Predictions page does);
- (b) that prediction's latency alone, and while the job trains;
- (c) two jobs side by side against one alone.

Policy on: this process is an interactive app (`threads.serve_interactively`),
jobs are launched by `ainnoseg.runs.jobs.launch` and predictions run inside
`threads.foreground()`. Policy off: what PyTorch does by default, every
process on every core (jobs run `python -m ainnoseg train` with
OMP_NUM_THREADS set to the cores, predictions use every core).

Jobs are timed from the heartbeat.json their training loop writes, over
`--steps` iterations after `--warmup`; side by side, every job is past its
warm-up before any measurement starts.

    python benchmarks/contention.py [--config configs/synthetic_quick.yaml] [--steps 8]
        [--models camvid/hrnetv2_w18s camvid/ainnoseg_w18s] [--policies on off]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

import ainnoseg
from ainnoseg import threads
from ainnoseg.data.examples import bundled_examples
from ainnoseg.engine.publish import processor_name
from ainnoseg.runs import jobs
from job_timing import launched_alive, measure_jobs, stop_all



class Jobs:
    """Training jobs started with the policy (`jobs.launch`) or without it."""

    def __init__(self, root, config, overrides, policy):
        self.root, self.config, self.overrides, self.policy = Path(root), config, overrides, policy
        self.processes = {}

    def start(self, name):
        run_dir = self.root / name
        if self.policy:
            record = jobs.launch("train", self.config, self.overrides, run_dir=run_dir)
            self.processes[run_dir] = record["threads"]
        else:
            run_dir.mkdir(parents=True)
            env = {**os.environ, "OMP_NUM_THREADS": str(threads.available_cores())}
            env.pop("OMP_WAIT_POLICY", None)
            with open(run_dir / "job.log", "wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "ainnoseg", "train", self.config, *self.overrides,
                     f"run_dir={run_dir}"], stdout=log, stderr=subprocess.STDOUT, env=env)
            self.processes[run_dir] = process
        return run_dir

    def alive(self, run_dir):
        if self.policy:
            return launched_alive(run_dir)
        return self.processes[run_dir].poll() is None

    def threads(self, run_dir):
        return self.processes[run_dir] if self.policy else threads.available_cores()

    def stop_all(self):
        for run_dir, process in self.processes.items():
            if self.policy:
                stop_all([run_dir])
            else:
                process.terminate()
                process.wait()
        self.processes = {}


def predict_once(models, image, policy):
    """One dashboard request: the image segmented by every model; its seconds."""
    started = time.perf_counter()
    if policy:
        with threads.foreground():
            for model in models:
                ainnoseg.segment_image(model, image)
    else:
        torch.set_num_threads(threads.available_cores())
        for model in models:
            ainnoseg.segment_image(model, image)
    return time.perf_counter() - started


def latency(models, image, policy, repeats):
    predict_once(models, image, policy)  # warm-up
    return statistics.median(predict_once(models, image, policy) for _ in range(repeats))


def with_stream(models, image, policy, action):
    """Run `action()` while this process serves requests back to back;
    returns (action's result, median latency of the requests served meanwhile)."""
    served, done = [], threading.Event()

    def serve():
        while not done.is_set():
            served.append(predict_once(models, image, policy))

    worker = threading.Thread(target=serve)
    worker.start()
    try:
        result = action()
    finally:
        done.set()
        worker.join()
    return result, statistics.median(served) if served else float("nan")


def run_policy(policy, args, models, image, root):
    """The policy's figures: {name: value}."""
    figures = {"predict idle s": latency(models, image, policy, args.repeats)}
    overrides = [f"iterations={args.budget}", f"eval_every={args.budget}",
                 f"checkpoint_every={args.budget}", *args.overrides]
    runner = Jobs(Path(root) / ("on" if policy else "off"), args.config, overrides, policy)
    try:
        solo = runner.start("solo")
        figures["job threads"] = runner.threads(solo)
        figures["job solo s/it"] = measure_jobs([solo], args.warmup, args.steps, args.timeout,
                                                runner.alive)[solo]
        seconds, busy = with_stream(
            models, image, policy,
            lambda: measure_jobs([solo], 0, args.steps, args.timeout, runner.alive)[solo])
        figures["job with predictions s/it"] = seconds
        figures["predict while training s"] = busy
        second = runner.start("second")
        pair = measure_jobs([solo, second], args.warmup, args.steps, args.timeout, runner.alive)
        figures["two jobs s/it (worse)"] = max(pair.values())
    finally:
        runner.stop_all()
    return figures


def report(results):
    names = list(next(iter(results.values())))
    print(f"{'figure':<28}" + "".join(f"{'policy ' + p:>14}" for p in results))
    for name in names:
        print(f"{name:<28}" + "".join(f"{results[p][name]:>14.3f}" for p in results))
    print("ratios (the targets: prediction <= 2x idle; job >= 60 % of its solo speed with "
          "predictions, >= 45 % beside a second job):")
    for policy, r in results.items():
        print(f"  policy {policy}: prediction while training / idle "
              f"{r['predict while training s'] / r['predict idle s']:.2f}x; job speed with "
              f"predictions {100 * r['job solo s/it'] / r['job with predictions s/it']:.0f} % of "
              f"solo; beside a second job {100 * r['job solo s/it'] / r['two jobs s/it (worse)']:.0f}"
              " % of solo")
    if set(results) == {"on", "off"}:
        on, off = results["on"], results["off"]
        print(f"  policy on / off: job alone {off['job solo s/it'] / on['job solo s/it']:.2f} "
              f"of the speed with every core; prediction alone "
              f"{on['predict idle s'] / off['predict idle s']:.2f}x the time")


def upload_image(size):
    """A bundled scene resized to `size` (height, width)."""
    from PIL import Image

    scene = bundled_examples()[0]
    pixels = Image.open(scene["image"]).convert("RGB").resize(tuple(size[::-1]))
    return np.asarray(pixels)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/synthetic_quick.yaml")
    parser.add_argument("--overrides", nargs="*", default=[], metavar="key=value",
                        help="config overrides for every job, e.g. model=hrnetv2_w18s")
    parser.add_argument("--models", nargs="+",
                        default=["synthetic/hrnetv2_w18s", "synthetic/ainnoseg_w18s"],
                        help="the two checkpoints a prediction runs (released names or files)")
    parser.add_argument("--policies", nargs="+", choices=("on", "off"), default=["on", "off"])
    parser.add_argument("--warmup", type=int, default=3, help="steps before timing (default 3)")
    parser.add_argument("--steps", type=int, default=8, help="steps timed (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="idle predictions timed")
    parser.add_argument("--upload-size", type=int, nargs=2, default=[480, 640],
                        metavar=("H", "W"), help="the image predicted (default 480 640: an "
                                                 "upload after the apps' resize to 640 px)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per measurement")
    args = parser.parse_args()
    # Long enough never to finish (or evaluate) while measured; stopped afterwards.
    args.budget = 20 * (3 * args.warmup + 3 * args.steps) + 100
    threads.serve_interactively()
    models = [ainnoseg.load(name) for name in args.models]
    image = upload_image(args.upload_size)
    print(f"{args.config} {' '.join(args.overrides)}; predictions: {' + '.join(args.models)} "
          f"on {args.upload_size[1]} x {args.upload_size[0]}; {processor_name()}, "
          f"{threads.available_cores()} cores; load {os.getloadavg()[0]:.2f}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for policy in args.policies:
            results[policy] = run_policy(policy == "on", args, models, image, root)
            print(f"policy {policy}: {results[policy]}", flush=True)
    report(results)


if __name__ == "__main__":
    main()
