"""The commands of a run: start it, resume it, or reproduce it from its saved
config in a new run directory, with this Python, pasted anywhere."""

import sys
from pathlib import Path


def fill_commands(run, path, kind, config_file):
    """Commands that work pasted into any directory: reproduce the run from its
    saved config into a new run directory beside it, resume it into its own."""
    path = Path(path).resolve()
    run.command = run_command(kind, path / config_file, run_dir=_unused_sibling(path))
    run.resume_command = run_command(kind, run_dir=path, resume=True)


def run_command(kind, config=None, overrides=(), run_dir=None, resume=False):
    """The argument list that runs `ainnoseg KIND` (train or selftrain) with
    this Python: a new run of `config` in `run_dir`, or its resume."""
    base = [sys.executable, "-m", "ainnoseg", kind]
    if resume:
        return base + ["--resume", str(run_dir), *overrides]
    return base + [str(config), *overrides, f"run_dir={run_dir}"]


def _unused_sibling(path):
    """runs/NAME_again, or runs/NAME_again2, ...: the first that does not exist."""
    number = 1
    while True:
        sibling = path.with_name(f"{path.name}_again{number if number > 1 else ''}")
        if not sibling.exists():
            return sibling
        number += 1
