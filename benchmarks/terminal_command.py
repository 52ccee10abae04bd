"""A command a user types in a terminal (`ainnoseg eval`) beside a training
job launched in the background, measured in one run: the job's seconds an
iteration alone and while evaluations run back to back, and an evaluation's
seconds alone and beside the job.

The job runs twice: with the thread policy, which gives a core back to the
terminal command within `REPLAN_S` seconds of its start, and with its threads
fixed at every core, as a job was before the policy counted terminal
commands (the command's thread then competes with the job's two, and the
job's step waits for its starved thread). Run it with nothing else working.

    python benchmarks/terminal_command.py [--config configs/synthetic_quick.yaml]
        [--eval synthetic/hrnetv2_w18s synthetic] [--steps 8]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ainnoseg import threads
from ainnoseg.engine.publish import processor_name
from ainnoseg.runs import jobs
from job_timing import add_job_arguments, job_overrides, measure_jobs, stop_all


def evaluation(checkpoint, dataset):
    """Seconds of one `ainnoseg eval` run as a user types it."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ainnoseg", "eval", checkpoint, dataset, "--quiet"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def while_evaluating(checkpoint, dataset, settle_s, action):
    """(action's result, median seconds of the evaluations run back to back
    meanwhile); they have run `settle_s` seconds before `action` starts."""
    seconds, done = [], threading.Event()

    def loop():
        while not done.is_set():
            seconds.append(evaluation(checkpoint, dataset))

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        time.sleep(settle_s)
        result = action()
    finally:
        done.set()
        worker.join()
    return result, statistics.median(seconds)


def step_now(run_dir):
    return json.loads((Path(run_dir) / "heartbeat.json").read_text())["step"]


def job_figures(config, overrides, run_dir, fixed_threads, args):
    """{figure: value} for one job: planned by the policy (`fixed_threads`
    None) or with its threads fixed."""
    jobs.launch("train", config, overrides, run_dir=run_dir, threads=fixed_threads)
    try:
        alone = measure_jobs([run_dir], args.warmup, args.steps, args.timeout)[run_dir]
        beside, eval_s = while_evaluating(
            *args.eval, args.settle, lambda: measure_jobs([run_dir], step_now(run_dir), args.steps,
                                                          args.timeout)[run_dir])
    finally:
        stop_all([run_dir])
    return {"job alone s/it": alone, "job beside evaluations s/it": beside,
            "evaluation beside the job s": eval_s}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_job_arguments(parser, "configs/synthetic_quick.yaml", ["model=hrnetv2_w18s"], steps=8)
    parser.add_argument("--eval", nargs=2, default=["synthetic/hrnetv2_w18s", "synthetic"],
                        metavar=("CHECKPOINT", "DATASET"), help="what `ainnoseg eval` scores")
    parser.add_argument("--settle", type=float, default=threads.REPLAN_S + 5,
                        help="seconds the evaluations run before the job is timed beside them "
                             "(default: long enough for a planned job to decide again)")
    parser.add_argument("--repeats", type=int, default=2, help="evaluations timed alone")
    args = parser.parse_args()
    cores = threads.available_cores()
    overrides = job_overrides(args)
    print(f"{args.config} {' '.join(args.overrides)}; ainnoseg eval {' '.join(args.eval)}; "
          f"{processor_name()}, {cores} cores; load {os.getloadavg()[0]:.2f}", flush=True)
    alone = statistics.median(evaluation(*args.eval) for _ in range(args.repeats))
    print(f"evaluation alone: {alone:.2f} s", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for name, fixed in (("policy", None), (f"fixed {cores} threads", cores)):
            results[name] = job_figures(args.config, overrides, Path(root, name.split()[0]),
                                        fixed, args)
            print(f"{name}: {results[name]}", flush=True)
    print(f"{'job':<20}{'alone s/it':>12}{'beside s/it':>13}{'speed kept':>12}"
          f"{'eval s':>9}{'eval / alone':>14}")
    for name, r in results.items():
        print(f"{name:<20}{r['job alone s/it']:>12.2f}{r['job beside evaluations s/it']:>13.2f}"
              f"{r['job alone s/it'] / r['job beside evaluations s/it']:>12.0%}"
              f"{r['evaluation beside the job s']:>9.2f}"
              f"{r['evaluation beside the job s'] / alone:>14.2f}")


if __name__ == "__main__":
    main()
