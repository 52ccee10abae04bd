"""`ainnoseg ablation run|status|collect PLAN`: an ablation plan's training
runs as background jobs, and the table of what they recorded."""

import json
from pathlib import Path

from ..config import ConfigError
from ..files import atomic_write
from ..runs import ablation, ablation_table


def run_run(args):
    plan = ablation.load_plan(args.plan, args.root)
    recorded = read_record(args.record) if args.record else None
    ablation.run_plan(plan, parallel=args.parallel, recorded=recorded)
    return 0


def run_status(args):
    plan = ablation.load_plan(args.plan, args.root)
    kept = ablation.recorded_runs(plan, read_record(args.record) if args.record else None)
    progresses = []
    for run in ablation.planned_runs(plan):
        progresses.append(ablation.progress(run, kept))
        print(ablation.status_line(progresses[-1]), flush=True)
    print(ablation.plan_summary(progresses))
    return 0


def run_collect(args):
    plan = ablation.load_plan(args.plan, args.root)
    earlier = read_record(args.out) if args.out and Path(args.out).is_file() else None
    record = ablation.collect(plan, earlier)
    for entry in record["settings"]:
        for run in entry["runs"]:
            if not Path(run["run_dir"]).is_dir():
                print(f"kept from {args.out} (its directory is not here): {run['run_dir']}")
    if args.out:
        text = json.dumps(record, indent=2) + "\n"
        atomic_write(Path(args.out), lambda handle: handle.write(text.encode()))
        print(f"wrote {args.out}")
    print(ablation_table.markdown_table(record))
    print(ablation_table.commands_list(record))
    return 0


def read_record(path):
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        record, why = None, error
    else:
        why = "it has no list of settings"
    if not isinstance(record, dict) or not isinstance(record.get("settings"), list):
        raise ConfigError(f"{path} is not a record `ainnoseg ablation collect` wrote: {why}")
    return record


def add_parsers(commands):
    parser = commands.add_parser(
        "ablation", help="run an ablation plan and tabulate it",
        description="An ablation plan (a YAML file, see configs/ablation/ and "
                    "ainnoseg/runs/ablation.py) lists settings, each a config with overrides, and "
                    "seeds. `run` trains every (setting, seed) as a background job, a few at a "
                    "time, resuming started runs and skipping finished ones; `status` lists "
                    "them; `collect` tabulates the finished runs' last validation as mean ± "
                    "std over the seeds.")
    actions = parser.add_subparsers(dest="action", required=True)
    for name, run, help_text in (("run", run_run, "train the plan's unfinished runs"),
                                 ("status", run_status, "each run's state (done, running, failed, "
                                  "started, new), step, best val mIoU, hours and ETA"),
                                 ("collect", run_collect, "the table of the finished runs")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("plan", help="the plan's YAML file")
        action.add_argument("--root", default="runs/ablation",
                            help="folder of the plans' run directories (default runs/ablation)")
        action.set_defaults(run=run)
        if name == "run":
            action.add_argument("--parallel", type=int, default=2, metavar="N",
                                help="jobs at once, sharing the cores (default 2)")
        if name in ("run", "status"):
            action.add_argument("--record", metavar="FILE.json",
                                help="a record `collect --out` wrote: the runs it holds whose "
                                     "directories are not here count as finished (`run` does "
                                     "not train them again)")
        if name == "collect":
            action.add_argument("--out", metavar="FILE.json",
                                help="also write the record (per-run metrics, means, commands); "
                                     "runs it holds whose directories are not here are kept")
