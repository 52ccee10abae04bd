"""Run directories and the work in them; this package is their one owner.

    layout      the files a run directory holds, its one-writer lock, what may become one
    files       tolerant readers of a run's files (JSON, JSONL, logs, checkpoints' facts)
    log         what a training run writes as it goes (metrics.jsonl, TensorBoard)
    heartbeat   a live run's pulse (step, time, pid)
    read        list_runs and load_run: each run's kind, status, curves and commands
    commands    the commands that start, resume or reproduce a run
    eta         how long a run still needs
    tables      runs as rows for a page or a notebook
    rounds      a self-training run's rounds and pseudo-labels
    control     a self-training run's rounds against its budget-matched control
    snapshots   predictions of a few val images at each evaluation: a model learning
    supervisor  the small process that keeps a job's record
    jobs        launch, stop and wait for background training jobs
    launching   what a launch form needs before a job starts (presets, checks)
    ablation    plans of runs over settings and seeds
    ablation_table  an ablation record as a Markdown table and its commands
"""

from .commands import run_command
from .read import (LOG_TAIL_LINES, STATUSES, STOP_SIGNALS, Run, find_run_dirs, judge_status,
                   list_runs, load_run, run_kind)

# The modules control, jobs, launching, rounds, snapshots and tables are public too:
# `from ainnoseg.runs import jobs`.
__all__ = ["LOG_TAIL_LINES", "STATUSES", "STOP_SIGNALS", "Run", "control", "find_run_dirs",
           "jobs", "judge_status", "launching", "list_runs", "load_run", "rounds", "run_command",
           "run_kind", "snapshots", "tables"]
