"""Two training jobs on one machine: seconds an iteration of a job alone and of
two jobs side by side, in one run.

Every job is launched as a user's would be, through `ainnoseg.jobs.launch`
(threads: the cores divided among the running jobs, at least 1;
OMP_WAIT_POLICY=PASSIVE), and timed from disk: from the heartbeat.json its
training loop writes (time and step at most every 2 s), over `--steps`
iterations after `--warmup`. Side by side, both jobs are past their warm-up
before either's measurement starts and both run until both are measured.
The bar: each of the two keeps at least a third of its solo speed (time ratio
at most 3; a fair share of 2 cores is 2).

    python benchmarks/jobs.py [--config configs/synthetic_quick.yaml] [--warmup 3] [--steps 10]
    python benchmarks/jobs.py --threads 2      (both jobs on every core: oversubscribed)
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from ainnoseg import jobs, runs
from ainnoseg.engine.publish import processor_name


def processor():
    """The processor's model name and the cores this process may use."""
    return f"{processor_name()}, {jobs.available_cores()} cores"


def _beat(run_dir):
    try:
        return json.loads((Path(run_dir) / "heartbeat.json").read_text())
    except (OSError, ValueError):  # not written yet, or being replaced
        return None


def _check_alive(run_dir):
    if jobs.active_process(run_dir) is not None:
        return
    run = runs.load_run(run_dir)
    if run.status != "running":
        tail = "\n".join(run.log_tail[-15:])
        raise SystemExit(f"the job in {run_dir} is {run.status} before it was measured "
                         f"({run.error}); its log ends:\n{tail}")


def measure(run_dirs, warmup, steps, timeout):
    """Seconds an iteration of each running job, over `steps` steps that all
    jobs run at the same time, after every job has done `warmup` steps."""
    samples = {d: [] for d in run_dirs}
    start, end, window = {}, {}, None
    deadline = time.monotonic() + timeout
    while len(end) < len(run_dirs):
        if time.monotonic() > deadline:
            raise SystemExit(f"not measured within {timeout} s: raise --timeout")
        for run_dir in run_dirs:
            beat = _beat(run_dir)
            if beat and (not samples[run_dir] or beat["time"] > samples[run_dir][-1][0]):
                samples[run_dir].append((beat["time"], beat["step"]))
        warm = [next((t for t, s in samples[d] if s >= warmup), None) for d in run_dirs]
        if window is None and None not in warm:
            window = max(warm)  # from here on, every job is past its warm-up
        for run_dir in run_dirs:
            later = [(t, s) for t, s in samples[run_dir] if window is not None and t >= window]
            if later and run_dir not in start:
                start[run_dir] = later[0]
            if run_dir in start and run_dir not in end and \
                    later[-1][1] >= start[run_dir][1] + steps:
                end[run_dir] = later[-1]
        time.sleep(0.1)
        if len(end) < len(run_dirs):
            for run_dir in run_dirs:
                _check_alive(run_dir)
    return {d: (end[d][0] - start[d][0]) / (end[d][1] - start[d][1]) for d in run_dirs}


def run_jobs(root, names, config, overrides, threads, warmup, steps, timeout):
    """Launch one job per name, measure them together, stop them; returns
    [(name, threads, seconds an iteration)]."""
    records = {}
    for name in names:
        records[name] = jobs.launch("train", config, overrides, run_dir=Path(root) / name,
                                    threads=threads)
    try:
        seconds = measure([Path(root) / name for name in names], warmup, steps, timeout)
    finally:
        for name in names:
            try:
                jobs.stop(Path(root) / name)
            except jobs.JobError:
                pass  # it had ended already
    return [(name, records[name]["threads"], seconds[Path(root) / name]) for name in names]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/synthetic_quick.yaml")
    parser.add_argument("--overrides", nargs="*", default=[], metavar="key=value",
                        help="config overrides for every job, e.g. model=hrnetv2_w18s")
    parser.add_argument("--warmup", type=int, default=3, help="steps before timing (default 3)")
    parser.add_argument("--steps", type=int, default=10, help="steps timed (default 10)")
    parser.add_argument("--threads", type=int,
                        help="threads of every job (default: launch's share of the cores)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per measurement")
    args = parser.parse_args()
    # Long enough never to finish (or evaluate) while measured; stopped afterwards.
    budget = 20 * (args.warmup + args.steps) + 100
    overrides = [f"iterations={budget}", f"eval_every={budget}", f"checkpoint_every={budget}",
                 *args.overrides]
    print(f"{args.config} {' '.join(args.overrides)}; {processor()}", flush=True)
    with tempfile.TemporaryDirectory() as root:
        solo = run_jobs(root, ["solo"], args.config, overrides, args.threads, args.warmup,
                        args.steps, args.timeout)[0]
        pair = run_jobs(root, ["a", "b"], args.config, overrides, args.threads, args.warmup,
                        args.steps, args.timeout)
    print(f"{'job':>6} {'threads':>7} {'s/iteration':>11} {'ratio to solo':>13}")
    print(f"{'solo':>6} {solo[1]:>7} {solo[2]:11.3f} {1.0:13.2f}")
    for name, threads, seconds in pair:
        print(f"{name:>6} {threads:>7} {seconds:11.3f} {seconds / solo[2]:13.2f}")
    worst = max(seconds for _, _, seconds in pair) / solo[2]
    verdict = "keeps" if worst <= 3 else "does NOT keep"
    print(f"side by side / solo: {worst:.2f}x at worst; each job {verdict} a third of its "
          "solo speed")


if __name__ == "__main__":
    main()
