"""Background jobs: a training or self-training run as a detached process that
outlives the page or notebook that started it, stopped by its recorded pid.

    job = ainnoseg.jobs.launch("train", "configs/synthetic_quick.yaml", ["iterations=50"],
                               run_dir="runs/quick")
    ainnoseg.runs.load_run("runs/quick").status        # "running", later "finished"
    ainnoseg.jobs.stop("runs/quick")                    # it then reads as "stopped"
    ainnoseg.jobs.launch("train", run_dir="runs/quick", resume=True)   # exactly where it was

A job is `python -m ainnoseg train|selftrain ...` (an argument list, never a
shell string) under a small supervisor (`ainnoseg/supervisor.py`) in its own
session and process group; stdout and stderr go to RUN_DIR/job.log, and
RUN_DIR/job.json records the pid, the command, the start and, whoever is
watching or not, the exit code and end time.

Each job gets a share of the cores: OMP_NUM_THREADS (PyTorch's intra-op
threads) is the cores divided among the jobs running under the same root, at
least 1, and OMP_WAIT_POLICY=PASSIVE makes idle OpenMP threads sleep instead of
spinning, so two jobs side by side do not steal each other's cores
(`benchmarks/jobs.py` measures it).
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import supervisor
from .engine.heartbeat import beating, read_heartbeat
from .engine.train import RUN_FILES  # what a new run in the same directory would overwrite

KINDS = ("train", "selftrain")
PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)


class JobError(RuntimeError):
    """A job that cannot be launched or stopped as asked; the message says why and what to do."""


def available_cores():
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def running_pids(root="runs"):
    """The pids of the training processes working under `root` (a job's
    child, or a process whose heartbeat still beats), up to three folders deep."""
    root, pids = Path(root), set()
    for pattern in ("job.json", "*/job.json", "*/*/job.json"):
        for path in root.glob(pattern):
            record = _quietly(supervisor.read_record, path.parent)
            if record and record.get("ended") is None and \
                    supervisor.process_alive(record.get("pid"), record.get("started")):
                pids.add(record.get("child_pid") or record["pid"])
    for pattern in ("heartbeat.json", "*/heartbeat.json", "*/*/heartbeat.json",
                    "*/*/*/heartbeat.json"):
        for path in root.glob(pattern):
            record = _quietly(read_heartbeat, path.parent)
            if beating(record):
                pids.add(record["pid"])  # a self-training run's inner runs share its pid
    return pids


def thread_count(root="runs", cores=None):
    """Threads for a new job: the cores divided among it and the jobs running under `root`."""
    cores = cores or available_cores()
    return max(1, cores // (1 + len(running_pids(root))))


def child_environment(threads):
    """This process's environment with the job's thread settings, and this
    copy of the package first on the path (the job runs the same code)."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               OMP_WAIT_POLICY="PASSIVE")
    env["PYTHONPATH"] = os.pathsep.join(
        [PACKAGE_PARENT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def job_command(kind, config=None, overrides=(), run_dir=None, resume=False):
    """The argument list that runs the job: python -m ainnoseg KIND ..."""
    base = [sys.executable, "-m", "ainnoseg", kind]
    if resume:
        return base + ["--resume", str(run_dir), *overrides]
    return base + [str(config), *overrides, f"run_dir={run_dir}"]


def active_process(run_dir):
    """What is working in `run_dir` now ("job pid 123", "process pid 456"), or None."""
    record = _quietly(supervisor.read_record, run_dir)
    if record and record.get("ended") is None and \
            supervisor.process_alive(record.get("pid"), record.get("started")):
        return f"job pid {record['pid']} (started {_clock(record.get('started'))})"
    heartbeat = _quietly(read_heartbeat, run_dir)
    if beating(heartbeat):
        where = "" if heartbeat.get("host") == socket.gethostname() else f" on {heartbeat['host']}"
        return f"process pid {heartbeat['pid']}{where}, started outside ainnoseg.jobs"
    return None


def _check_request(kind, config, overrides, run_dir, resume):
    """Refuse what the job would fail on at once, before anything is started."""
    if kind not in KINDS:
        raise JobError(f"kind={kind!r} is not a job; choose one of {list(KINDS)}")
    if any(str(item).startswith("run_dir=") for item in overrides):
        raise JobError("give the run directory as launch(..., run_dir=...), not as an override")
    if resume:
        if config is not None:
            raise JobError("a resumed job continues the config inside its run directory; "
                           "drop config (key=value overrides may change data, workers, "
                           "log_every and checkpoint_every)")
        needed = "selftrain.yaml" if kind == "selftrain" else "last.pt"
        if not (Path(run_dir) / needed).is_file():
            raise JobError(f"{run_dir} has no {needed} to resume; launch({kind!r}, CONFIG, "
                           f"run_dir={str(run_dir)!r}) starts a new run there")
        return
    if config is None:
        raise JobError(f"launch({kind!r}) needs a config file (see configs/), or resume=True")
    from .config import load_config  # a bad key or value is refused here, not in the log

    load_config(config, overrides)
    found = [name for name in RUN_FILES if (Path(run_dir) / name).exists()]
    if found:
        raise JobError(f"{run_dir} already holds a run ({', '.join(found)}): continue it with "
                       f"launch({kind!r}, run_dir={str(run_dir)!r}, resume=True), or choose "
                       "another run_dir")


def launch(kind, config=None, overrides=(), run_dir=None, resume=False, threads=None):
    """Start a training ("train") or self-training ("selftrain") run as a
    detached background job; returns its job record (also in RUN_DIR/job.json).

    Args:
        kind: "train" or "selftrain".
        config: YAML config file (not with `resume`).
        overrides: key=value strings, as on the command line.
        run_dir: the run directory; default runs/<config name>, as the CLI's.
        resume: continue the run in `run_dir` where it stopped.
        threads: PyTorch threads of the job; default the cores divided among
            the jobs running beside `run_dir` (see `thread_count`).
    Raises JobError if another process works in `run_dir`, or the request
    cannot start (no config, nothing to resume, a run already there);
    ConfigError for a bad config key or value.
    """
    overrides = [str(item) for item in overrides]
    if run_dir is None:
        if config is None:
            raise JobError("give run_dir= (the run to resume) or a config file")
        run_dir = Path("runs") / Path(config).stem
    run_dir = Path(run_dir)
    _check_request(kind, config, overrides, run_dir, resume)
    command = job_command(kind, config, overrides, run_dir, resume)
    supervisor.reap()
    with supervisor.locked(run_dir):
        busy = active_process(run_dir)
        if busy:
            raise JobError(f"{run_dir} is in use by {busy}: stop it first "
                           f"(ainnoseg.jobs.stop({str(run_dir)!r})) or choose another run_dir")
        threads = threads or thread_count(run_dir.resolve().parent)
        wrapper = [sys.executable, "-I", supervisor.__file__, str(run_dir), "--", *command]
        with open(run_dir / supervisor.LOG, "ab") as log:
            process = subprocess.Popen(wrapper, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, env=child_environment(threads),
                                       start_new_session=True)
        supervisor.CHILDREN[process.pid] = process
        record = {
            "kind": kind, "run_dir": str(run_dir.resolve()), "command": command,
            "supervisor_command": wrapper, "pid": process.pid, "host": socket.gethostname(),
            "cwd": os.getcwd(), "started": round(time.time(), 3), "threads": threads,
            "env": {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
                    "OMP_WAIT_POLICY": "PASSIVE"},
            "log": supervisor.LOG, "resume": resume, "child_pid": None, "stop_requested": None,
            "ended": None, "exit_code": None, "signal": None,
        }
        supervisor.write_record(run_dir, record)
    return record


def stop(run, timeout=30.0):
    """End the job working in `run` (a run directory, or a `Run`): SIGTERM to
    its process group (the supervisor, the training process and its loader
    workers), then SIGKILL after `timeout` seconds. The run then reads as
    "stopped", resumable from its last checkpoint. Returns the job record."""
    run_dir = Path(getattr(run, "path", run))
    supervisor.reap()
    with supervisor.locked(run_dir):
        record = _quietly(supervisor.read_record, run_dir)
        alive = record is not None and record.get("ended") is None and \
            supervisor.process_alive(record.get("pid"), record.get("started"))
        if not alive:
            raise JobError(_not_running(run_dir, record))
        record["stop_requested"] = round(time.time(), 3)
        supervisor.write_record(run_dir, record)
    pid, sent = record["pid"], signal.SIGTERM
    _signal_group(pid, sent)
    if not _wait_for_exit(pid, record["started"], timeout):
        sent = signal.SIGKILL
        _signal_group(pid, sent)
        _wait_for_exit(pid, record["started"], 5.0)
    supervisor.reap()
    with supervisor.locked(run_dir):
        record = supervisor.read_record(run_dir)
        if record.get("ended") is None:  # the supervisor died before it could record it
            record.update(ended=round(time.time(), 3), exit_code=-sent, signal=sent.name)
            supervisor.write_record(run_dir, record)
    return record


def wait(run, timeout=None, poll=0.2):
    """Block until the job in `run` has ended; returns its job record.
    TimeoutError after `timeout` seconds (None: no limit)."""
    run_dir = Path(getattr(run, "path", run))
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        record = supervisor.read_record(run_dir)
        if record is None:
            raise JobError(f"{run_dir} has no job record (job.json): it was not launched")
        if record.get("ended") is not None or \
                not supervisor.process_alive(record.get("pid"), record.get("started")):
            supervisor.reap()
            return supervisor.read_record(run_dir)
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"the job in {run_dir} (pid {record['pid']}) still runs after "
                               f"{timeout} s; see {run_dir / supervisor.LOG}")
        time.sleep(poll)


def _not_running(run_dir, record):
    if record is None:
        other = active_process(run_dir)
        if other:
            return (f"{run_dir} was not started by ainnoseg.jobs.launch (no job.json): "
                    f"stop {other} where it runs (Ctrl-C), or with `kill PID`")
        return f"{run_dir} has no job to stop (no job.json)"
    if record.get("ended") is not None:
        return (f"the job in {run_dir} already ended at {_clock(record['ended'])} "
                f"(exit code {record.get('exit_code')})")
    return f"the job in {run_dir} (pid {record.get('pid')}) is no longer running"


def _signal_group(pid, signum):
    try:
        os.killpg(pid, signum)  # the supervisor leads its own process group
    except ProcessLookupError:
        pass


def _wait_for_exit(pid, started, timeout):
    deadline = time.monotonic() + timeout
    while supervisor.process_alive(pid, started):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _quietly(read, *args):
    """A record reader's result, or None where the file is unreadable
    (`ainnoseg.runs` reports such files; here they count as no record)."""
    try:
        return read(*args)
    except (OSError, ValueError):
        return None


def _clock(seconds):
    return "?" if seconds is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))
