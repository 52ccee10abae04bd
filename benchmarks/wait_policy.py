"""How a training job's idle OpenMP threads should wait at the end of each
parallel region: OpenMP's default (spin a moment, then sleep) against
sleeping at once (OMP_WAIT_POLICY=PASSIVE), for one job on every core.

Each measurement is a job launched as a plan launches it
(`ainnoseg.runs.jobs.launch`: nice 10, its loader workers, logging) with its
threads fixed at the cores, timed from its heartbeat over `--steps`
iterations after `--warmup`. OpenMP reads the policy when a process starts,
so the two policies alternate `--rounds` times, and the drift of a shared
machine falls on both alike. Run it with nothing else working.

    python benchmarks/wait_policy.py [--config configs/camvid_hrnetv2_w18s.yaml]
        [--overrides data=../shared/datasets/camvid workers=1] [--steps 6] [--rounds 3]
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

POLICIES = {"default": None, "PASSIVE": "PASSIVE"}


def seconds_per_step(config, overrides, run_dir, policy, args):
    """Seconds an iteration of one job whose OpenMP threads wait by `policy`."""
    os.environ.pop("OMP_WAIT_POLICY", None)  # the job inherits this process's environment
    if POLICIES[policy]:
        os.environ["OMP_WAIT_POLICY"] = POLICIES[policy]
    jobs.launch("train", config, overrides, run_dir=run_dir, threads=threads.available_cores())
    try:
        return measure_jobs([run_dir], args.warmup, args.steps, args.timeout)[run_dir]
    finally:
        stop_all([run_dir])
        os.environ.pop("OMP_WAIT_POLICY", None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_job_arguments(parser, "configs/camvid_hrnetv2_w18s.yaml",
                      ["data=../shared/datasets/camvid", "workers=1"], steps=6)
    parser.add_argument("--rounds", type=int, default=3, help="jobs per policy (default 3)")
    args = parser.parse_args()
    overrides = job_overrides(args)
    print(f"{args.config} {' '.join(args.overrides)}; {threads.available_cores()} threads; "
          f"{processor_name()}; load {os.getloadavg()[0]:.2f}", flush=True)
    seconds = {policy: [] for policy in POLICIES}
    with tempfile.TemporaryDirectory() as root:
        for round_index in range(args.rounds):
            for policy in POLICIES:
                run_dir = Path(root, f"{policy}{round_index}")
                seconds[policy].append(seconds_per_step(args.config, overrides, run_dir,
                                                        policy, args))
            print(f"round {round_index + 1}: " + ", ".join(
                f"{policy} {values[-1]:.3f} s/it" for policy, values in seconds.items()),
                flush=True)
    ratios = [p / d for p, d in zip(seconds["PASSIVE"], seconds["default"])]
    print(f"seconds an iteration, PASSIVE / default, each round: "
          f"{', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
