"""The job record of a run directory and the small process that keeps it.

`ainnoseg.runs.jobs.launch` starts this file as a detached process (its own session
and process group) that runs the real training command as its child, waits for
it and records how it ended, even if nobody is watching:

    python -I ainnoseg/runs/supervisor.py RUN_DIR --nice 10 -- python -m ainnoseg train ...

    RUN_DIR/job.json   {"kind", "command", "pid" (this supervisor = the process
                        group), "host", "cwd", "started", "threads", "env",
                        "log", "child_pid", "child_started", "stop_requested",
                        "ended", "exit_code", "signal"}
    RUN_DIR/job.log    the command's stdout and stderr, one header line per job

Standard library only, and run by path in isolated mode (-I): importing the
`ainnoseg` package would load PyTorch, seconds and most of a gigabyte for a
process that only waits. (That is also why it has its own small atomic write
instead of `ainnoseg.files.atomic_write`.)
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: the package still imports; jobs need POSIX process groups
    fcntl = None

RECORD, LOG, LOCK = "job.json", "job.log", ".job.lock"
START_SLACK_S = 5.0  # a process that started this long after a record was written is another one
# pid -> Popen of the supervisors this process launched, polled so none stays a zombie
CHILDREN = {}


@contextlib.contextmanager
def locked(run_dir):
    """Hold RUN_DIR/.job.lock (an advisory file lock) while the record is read and written."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        raise OSError("background jobs need a POSIX system (Linux, macOS): process groups "
                      "and file locks; train with `ainnoseg train` in a terminal instead")
    with open(run_dir / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_record(run_dir):
    """The job record of `run_dir`, or None if it has none; ValueError if it
    is not a JSON object (the message names the file)."""
    path = Path(run_dir) / RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path} is not JSON ({error}); delete it if no job runs there") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path} holds {type(record).__name__}, not a job record")
    return record


def write_record(run_dir, record):
    """Write the job record atomically: a reader sees the old one or the new
    one. Its writers hold `locked`, so temporary files of it found here were
    left by a killed writer, and go."""
    path = Path(run_dir) / RECORD
    for stale in path.parent.glob(f".{RECORD}.*.tmp"):
        stale.unlink(missing_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                             suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump(record, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def update_record(run_dir, **fields):
    """Merge `fields` into the job record under the lock; returns the record."""
    with locked(run_dir):
        record = read_record(run_dir) or {}
        record.update(fields)
        write_record(run_dir, record)
    return record


def _proc_start_time(pid):
    """When process `pid` started (epoch seconds, about 1 s precision), and
    whether it is a zombie; (None, None) where /proc cannot tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
    except (OSError, StopIteration, ValueError):
        return None, None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (name)": state is field 3
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK"), fields[0] in ("Z", "X")


def process_alive(pid, started=None):
    """Whether process `pid` runs (not a zombie) and, when `started` (epoch
    seconds) is given, is the process that was running then: one that started
    later reuses the pid of a process that ended."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    child = CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        CHILDREN.pop(pid)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    began, zombie = _proc_start_time(pid)
    if zombie:
        return False
    return began is None or started is None or began <= started + START_SLACK_S


def job_running(record):
    """Whether the job of a job record still runs: its supervisor, or its
    training process, which outlives a supervisor killed with SIGKILL."""
    if record.get("ended") is not None:
        return False
    child_started = record.get("child_started") or record.get("started")
    return process_alive(record.get("pid"), record.get("started")) or \
        process_alive(record.get("child_pid"), child_started)


def reap():
    """Collect the exit status of finished supervisors this process started."""
    for pid, child in list(CHILDREN.items()):
        if child.poll() is not None:
            CHILDREN.pop(pid)


def _log(message):
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"=== {stamp} {message}", flush=True)


def supervise(run_dir, command):
    """Run `command`, record its pid, then its exit code and end time; returns the code."""
    state = {"child": None, "signal": None}

    def forward(signum, _frame):
        state["signal"] = signum
        if state["child"] is not None and state["child"].poll() is None:
            state["child"].send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    _log(f"job started (supervisor pid {os.getpid()}): {subprocess.list2cmdline(command)}")
    code = -state["signal"] if state["signal"] else None
    if code is None:
        try:
            state["child"] = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        except OSError as error:
            print(f"error: cannot start {command[0]}: {error}", flush=True)
            code = 127
    if state["child"] is not None:
        if state["signal"]:  # arrived while the child was being started
            state["child"].send_signal(state["signal"])
        update_record(run_dir, child_pid=state["child"].pid, child_started=round(time.time(), 3))
        code = state["child"].wait()
    name = signal.Signals(-code).name if code < 0 else None
    update_record(run_dir, ended=round(time.time(), 3), exit_code=code, signal=name)
    _log(f"job ended: exit code {code}" + (f" ({name})" if name else ""))
    return code


def main(argv=None):
    """python -I supervisor.py RUN_DIR [--nice N] -- COMMAND [ARGS ...]: with
    --nice, the supervisor and so the command run N steps nicer."""
    argv = sys.argv[1:] if argv is None else argv
    nice = 0
    if len(argv) > 2 and argv[1] == "--nice":
        nice, argv = int(argv[2]), [argv[0], *argv[3:]]
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: python -I ainnoseg/runs/supervisor.py RUN_DIR [--nice N] -- COMMAND ...")
    if nice and hasattr(os, "nice"):
        os.nice(nice)
    code = supervise(argv[0], argv[2:])
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
