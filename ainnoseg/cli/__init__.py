"""The `ainnoseg` command line: one module per group of subcommands.

Every mistake a user can make (a missing file, a bad config value, a
checkpoint that does not fit, damaged data, a run directory that another
process writes or that holds other files) ends the command with one line,
`error: ...`, on stderr and exit status 2: the library raises ValueError
subclasses (ConfigError, DataError, CheckpointError, RunDirError, RunBusy),
OSError (a full disk too), FloatingPointError (training that diverged), or
ImportError for an optional package that is not installed. A progress bar
ends its line first, so the error line stands on its own. Output piped into
a reader that stops early (`| head`) ends the command quietly.
"""

import argparse
import os
import sys

from .. import threads
from . import ablation, inference, overview, training

# What a user's mistake raises; anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, OSError, FloatingPointError, ImportError)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ainnoseg",
        description="AinnoSeg workbench: HRNetV2 + dual attention + OCR segmentation.")
    commands = parser.add_subparsers(dest="command", required=True)
    overview.add_parsers(commands)
    training.add_parsers(commands)
    inference.add_parsers(commands)
    ablation.add_parsers(commands)
    return parser


def one_line(error):
    """The message of `error` on one line. An error raised in a DataLoader
    worker arrives wrapped in the worker's traceback: its last line is the
    original message."""
    text = str(error) or type(error).__name__
    if "Original Traceback" in text:
        text = text.rsplit(f"{type(error).__name__}: ", 1)[-1]
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def main(argv=None):
    args = build_parser().parse_args(argv)
    threads.apply_for_command(args.command)  # the thread policy: ainnoseg/threads.py
    try:
        status = args.run(args)
        sys.stdout.flush()  # a closed reader shows here, not in the exit's flush
    except BrokenPipeError:  # the reader stopped early (`ainnoseg models | head -3`): no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # for the exit's flush
        status = 0
    except USER_ERRORS as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt:
        print("error: interrupted (a training run continues with --resume RUN_DIR)",
              file=sys.stderr)
        status = 130
    sys.exit(status or 0)
