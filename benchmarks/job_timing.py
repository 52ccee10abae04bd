"""Timing training jobs from the heartbeat.json their loop writes: what the
benchmarks that launch jobs (contention, plan_throughput, terminal_command,
wait_policy) share."""

import json
import time
from pathlib import Path

from ainnoseg.runs import jobs


def add_job_arguments(parser, config, overrides, steps):
    """The job options: config, its overrides, steps before and in the timing."""
    parser.add_argument("--config", default=config)
    parser.add_argument("--overrides", nargs="*", default=overrides, metavar="key=value",
                        help="config overrides for every job")
    parser.add_argument("--warmup", type=int, default=3, help="steps before timing (default 3)")
    parser.add_argument("--steps", type=int, default=steps, help=f"steps timed (default {steps})")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per measurement")


def job_overrides(args):
    """The jobs' overrides with a budget long enough never to finish (or
    evaluate) while measured; they are stopped afterwards."""
    budget = 100 * (args.warmup + args.steps) + 1000
    return [*args.overrides, f"iterations={budget}", f"eval_every={budget}",
            f"checkpoint_every={budget}"]


def launched_alive(run_dir):
    return jobs.active_process(run_dir) is not None


def stop_all(run_dirs):
    for run_dir in run_dirs:
        try:
            jobs.stop(run_dir)
        except jobs.JobError:
            pass  # it had ended already


def _beat(run_dir):
    try:
        return json.loads((Path(run_dir) / "heartbeat.json").read_text())
    except (OSError, ValueError):  # not written yet, or being replaced
        return None


def measure_jobs(run_dirs, warmup, steps, timeout, alive=launched_alive):
    """Seconds an iteration of each job over `steps` steps that all of them
    run at the same time, after every job has done `warmup` steps."""
    samples = {d: [] for d in run_dirs}
    start, end, window = {}, {}, None
    deadline = time.monotonic() + timeout
    while len(end) < len(run_dirs):
        if time.monotonic() > deadline:
            raise SystemExit(f"not measured within {timeout} s: raise --timeout")
        for run_dir in run_dirs:
            if not alive(run_dir):
                log = (Path(run_dir) / "job.log")
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise SystemExit(f"the job in {run_dir} ended before it was measured:\n{tail}")
            beat = _beat(run_dir)
            if beat and (not samples[run_dir] or beat["time"] > samples[run_dir][-1][0]):
                samples[run_dir].append((beat["time"], beat["step"]))
        warm = [next((t for t, s in samples[d] if s >= warmup), None) for d in run_dirs]
        if window is None and None not in warm:
            window = max(warm)
        for run_dir in run_dirs:
            later = [(t, s) for t, s in samples[run_dir] if window is not None and t >= window]
            if later and run_dir not in start:
                start[run_dir] = later[0]
            if run_dir in start and run_dir not in end and \
                    later[-1][1] >= start[run_dir][1] + steps:
                end[run_dir] = later[-1]
        time.sleep(0.1)
    return {d: (end[d][0] - start[d][0]) / (end[d][1] - start[d][1]) for d in run_dirs}
