"""How many jobs an ablation plan should run at a time (`ainnoseg ablation run
--parallel N`): the iterations a second of one training job on every core,
against one single-thread job per core side by side, measured in one run.

Both are launched as the plan launches them (`ainnoseg.runs.jobs.launch`, nice,
idle threads asleep), with their threads fixed; each is timed from the
heartbeat.json its training loop writes, over `--steps` iterations after
`--warmup`, the side-by-side jobs over steps they run at the same time. The
two alternate `--rounds` times, so that the drift of a shared machine falls
on both alike. Run it with nothing else working on the machine.

    python benchmarks/plan_throughput.py [--config configs/camvid_hrnetv2_w18s.yaml]
        [--overrides data=../shared/datasets/camvid workers=1] [--warmup 3] [--steps 8]
        [--rounds 3]
"""

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from ainnoseg import threads
from ainnoseg.engine.publish import processor_name
from ainnoseg.runs import jobs
from job_timing import add_job_arguments, job_overrides, measure_jobs, stop_all


def seconds_per_step(config, overrides, run_dirs, job_threads, args):
    """{run_dir: seconds an iteration} of jobs started together, each with
    `job_threads` threads and its own seed."""
    try:
        for seed, run_dir in enumerate(run_dirs):
            jobs.launch("train", config, [*overrides, f"seed={seed}"], run_dir=run_dir,
                        threads=job_threads)
        return measure_jobs(run_dirs, args.warmup, args.steps, args.timeout)
    finally:
        stop_all(run_dirs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_job_arguments(parser, "configs/camvid_hrnetv2_w18s.yaml",
                      ["data=../shared/datasets/camvid", "workers=1"], steps=8)
    parser.add_argument("--rounds", type=int, default=3,
                        help="measurements of each, alternating (default 3)")
    args = parser.parse_args()
    cores = threads.available_cores()
    overrides = job_overrides(args)
    print(f"{args.config} {' '.join(args.overrides)}; {processor_name()}, {cores} cores; "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    ratios = []
    with tempfile.TemporaryDirectory() as root:
        for index in range(args.rounds):
            solo = seconds_per_step(args.config, overrides, [Path(root, f"alone{index}")],
                                    cores, args)
            alone = next(iter(solo.values()))
            side = seconds_per_step(args.config, overrides,
                                    [Path(root, f"side{index}-{i}") for i in range(cores)], 1,
                                    args)
            ratios.append(alone * sum(1 / seconds for seconds in side.values()))
            each = ", ".join(f"{seconds:.3f}" for seconds in side.values())
            print(f"round {index + 1}: one job, {cores} threads: {alone:.3f} s/it; {cores} jobs "
                  f"side by side, 1 thread each: {each} s/it; ratio {ratios[-1]:.2f}", flush=True)
    print(f"iterations a second, side by side / alone, each round: "
          f"{', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
