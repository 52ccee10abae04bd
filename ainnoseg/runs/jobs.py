"""Background jobs: a training or self-training run as a detached process that
outlives the page or notebook that started it, stopped by its recorded pid.

    job = ainnoseg.runs.jobs.launch("train", "configs/synthetic_quick.yaml", ["iterations=50"],
                               run_dir="runs/quick")
    ainnoseg.runs.load_run("runs/quick").status        # "running", later "finished"
    ainnoseg.runs.jobs.stop("runs/quick")                    # it then reads as "stopped"
    ainnoseg.runs.jobs.launch("train", run_dir="runs/quick", resume=True)   # exactly where it was

A job is `python -m ainnoseg train|selftrain ...` (an argument list, never a
shell string) under a small supervisor (`ainnoseg/runs/supervisor.py`) in its own
session and process group; stdout and stderr go to RUN_DIR/job.log, and
RUN_DIR/job.json records the pid, the command, the start and, whoever is
watching or not, the exit code and end time.

Each job's threads, wait policy and priority come from the project's thread
policy (`ainnoseg.threads.for_job`): the cores left after one is kept for an
interactive app (the dashboard, the demo, a notebook that launched it),
divided among the training processes running on the machine, decided again
as jobs come and go; idle threads asleep (OMP_WAIT_POLICY=PASSIVE); nice 10
(`benchmarks/contention.py` measures it).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .. import threads as thread_policy
from ..registry import list_models
from . import layout, supervisor
from .commands import run_command
from .heartbeat import beating, read_heartbeat
from .read import find_run_dirs, load_run, run_kind

KINDS = ("train", "selftrain")
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


class JobError(RuntimeError):
    """A job that cannot be launched or stopped as asked; the message says why
    and what to do in Python, `page` says it in a dashboard's words (its
    fields and buttons)."""

    def __init__(self, message, page=None):
        super().__init__(message)
        self.page = page or message


def running_pids(root="runs"):
    """The pids of the training processes working in the runs under `root`
    (see `ainnoseg.runs.find_run_dirs`; a self-training run's inner runs share
    its pid): a job's child, a process writing a run, or one whose heartbeat
    still beats."""
    workers = filter(None, map(_worker, find_run_dirs(root)))
    return {pid for pid, _ in workers if pid}


def job_plan(threads=None):
    """The thread plan of a new job: the policy's (`ainnoseg.threads.for_job`)
    for this machine now and this launcher, or `threads` fixed by the caller
    (then never decided again), idle threads asleep and nice 10 either way."""
    if threads:
        return thread_policy.Plan(threads, interop=1, nice=thread_policy.BACKGROUND_NICE,
                                  passive=True, why=f"{threads} thread(s) asked for")
    return thread_policy.for_job(thread_policy.read_machine(), thread_policy.is_interactive())


def child_environment(plan, fixed=False):
    """This process's environment with the job's thread settings (`plan`), the
    mark that lets the job decide again (unless `fixed`), and this copy of the
    package first on the path (the job runs the same code)."""
    env = dict(os.environ)
    env.update(plan.environment())
    mode = "fixed" if fixed else ("interactive" if thread_policy.is_interactive() else "background")
    env[thread_policy.JOB_VARIABLE] = mode
    env["PYTHONPATH"] = os.pathsep.join(
        [PACKAGE_PARENT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def active_process(run_dir):
    """What is working in `run_dir` now ("job pid 123 (started ...)", "process
    pid 456 (started ...), ..."), or None."""
    worker = _worker(run_dir)
    return worker[1] if worker else None


def _worker(run_dir):
    """(pid of the training process, what it is in words) of the one working
    in `run_dir` now, or None: a job (its supervisor or, once that was killed,
    its child), a process holding the writer lock, or one whose heartbeat beats."""
    record = _quietly(supervisor.read_record, run_dir)
    if record and supervisor.job_running(record):
        return (record.get("child_pid") or record["pid"],
                f"job pid {record['pid']} (started {_clock(record.get('started'))})")
    holder = _quietly(layout.current_writer, run_dir)
    if holder is not None:
        who = layout.describe(holder) if holder else "a process that is just starting"
        return holder.get("pid"), f"process {who} outside ainnoseg.runs.jobs"
    heartbeat = _quietly(read_heartbeat, run_dir)
    if beating(heartbeat):
        where = "" if heartbeat.get("host") == socket.gethostname() else f" on {heartbeat['host']}"
        return (heartbeat["pid"],
                f"process pid {heartbeat['pid']}{where}, started outside ainnoseg.runs.jobs")
    return None


def resumable(run_dir, kind):
    """Whether `run_dir` holds a `kind` run that a resumed job can continue."""
    return (Path(run_dir) / layout.RESUMED_FROM[kind]).is_file()


def _check_request(kind, config, overrides, run_dir, resume):
    """Refuse what the job would fail on at once, before anything is started."""
    if kind not in KINDS:
        raise JobError(f"kind={kind!r} is not a job; choose one of {list(KINDS)}")
    if any(str(item).startswith("run_dir=") for item in overrides):
        raise JobError("give the run directory as launch(..., run_dir=...), not as an override",
                       page="give the run directory as the run name, not as run_dir= in the "
                            "settings")
    try:
        layout.require_new_or_run(run_dir)
    except layout.RunDirError as error:
        raise JobError(f"{error.reason}: choose a new or empty run_dir",
                       page=f"{error.reason}: choose another run name or runs folder") from None
    if resume:
        _check_resume(kind, config, run_dir)
        return
    if config is None:
        raise JobError(f"launch({kind!r}) needs a config file (see configs/), or resume=True")
    from ..config import load_config  # a bad key or value is refused here, not in the log

    load_config(config, overrides)
    found = [name for name in layout.RUN_FILES if (Path(run_dir) / name).exists()]
    if found and not (kind == "train" and layout.killed_before_first_checkpoint(run_dir)):
        raise JobError(f"{run_dir} already holds a run ({', '.join(found)}): continue it with "
                       f"launch({kind!r}, run_dir={str(run_dir)!r}, resume=True), or choose "
                       "another run_dir",
                       page=f"{run_dir} already holds a run: choose another run name, or, if it "
                            "stopped or failed, continue it with its Resume button under Jobs")


def _check_resume(kind, config, run_dir):
    if config is not None:
        raise JobError("a resumed job continues the config inside its run directory; "
                       "drop config (key=value overrides may change data, workers, "
                       "log_every and checkpoint_every)")
    if not resumable(run_dir, kind):
        raise JobError(f"{run_dir} has no {layout.RESUMED_FROM[kind]} to resume; launch({kind!r}, "
                       f"CONFIG, run_dir={str(run_dir)!r}) starts a new run there",
                       page=f"{run_dir} has no checkpoint to resume yet: Start begins a new "
                            "run there")


def launch(kind, config=None, overrides=(), run_dir=None, resume=False, threads=None):
    """Start a training ("train") or self-training ("selftrain") run as a
    detached background job; returns its job record (also in RUN_DIR/job.json).

    Args:
        kind: "train" or "selftrain".
        config: YAML config file (not with `resume`).
        overrides: key=value strings, as on the command line.
        run_dir: the run directory; default runs/<config name>, as the CLI's.
        resume: continue the run in `run_dir` where it stopped.
        threads: PyTorch threads of the job, fixed; default the thread
            policy's, decided again while it runs (see `ainnoseg.threads`).
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
    command = run_command(kind, config, overrides, run_dir, resume)
    supervisor.reap()
    with supervisor.locked(run_dir):
        busy = active_process(run_dir)
        if busy:
            raise JobError(f"{run_dir} is in use by {busy}: stop it first "
                           f"(ainnoseg.runs.jobs.stop({str(run_dir)!r})) or choose another run_dir",
                           page=f"{run_dir} is in use by {busy}: stop it under Jobs, or choose "
                                "another run name")
        plan = job_plan(threads)
        wrapper = [sys.executable, "-I", supervisor.__file__, str(run_dir),
                   "--nice", str(plan.nice), "--", *command]
        environment = child_environment(plan, fixed=bool(threads))
        with open(run_dir / supervisor.LOG, "ab") as log:
            process = subprocess.Popen(wrapper, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, env=environment,
                                       start_new_session=True)
        supervisor.CHILDREN[process.pid] = process
        record = {
            "kind": kind, "run_dir": str(run_dir.resolve()), "command": command,
            "supervisor_command": wrapper, "pid": process.pid, "host": socket.gethostname(),
            "cwd": os.getcwd(), "started": round(time.time(), 3), "threads": plan.threads,
            "env": {key: environment[key] for key in
                    ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY",
                     thread_policy.JOB_VARIABLE)},
            "nice": plan.nice, "thread_plan": plan.why,
            "log": supervisor.LOG, "resume": resume, "child_pid": None, "stop_requested": None,
            "ended": None, "exit_code": None, "signal": None,
        }
        supervisor.write_record(run_dir, record)
    return record


def stop(run, timeout=30.0):
    """End the job working in `run` (a run directory, or a `Run`): SIGTERM to
    its process group (the supervisor, the training process and its loader
    workers; the group outlives a supervisor killed with SIGKILL, so its
    training process is reached then too), then SIGKILL after `timeout`
    seconds. The run then reads as "stopped", resumable from its last
    checkpoint. Returns the job record."""
    run_dir = Path(getattr(run, "path", run))
    if not run_dir.is_dir():
        raise JobError(f"{run_dir} is not a folder: there is no job to stop")
    supervisor.reap()
    with supervisor.locked(run_dir):
        record = _quietly(supervisor.read_record, run_dir)
        if record is None or not supervisor.job_running(record):
            raise JobError(_not_running(run_dir, record))
        record["stop_requested"] = round(time.time(), 3)
        supervisor.write_record(run_dir, record)
    sent = signal.SIGTERM
    _signal_group(record["pid"], sent)
    if not _wait_for_exit(record, timeout):
        sent = signal.SIGKILL
        _signal_group(record["pid"], sent)
        _wait_for_exit(record, 5.0)
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
        if not supervisor.job_running(record):
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
            return (f"{run_dir} was not started by ainnoseg.runs.jobs.launch (no job.json): "
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


def _wait_for_exit(record, timeout):
    """Wait until the job's supervisor and training process have both ended."""
    deadline = time.monotonic() + timeout
    while supervisor.job_running({**record, "ended": None}):
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


def delete_run(run_dir):
    """Delete the run directory `run_dir` with everything in it. Refused (a
    JobError, nothing deleted) while a job or any process works in it, and
    when it holds no ainnoseg run (`_an_ainnoseg_run`)."""
    run_dir = Path(run_dir)
    busy = run_kind(run_dir) is not None and active_process(run_dir)
    if busy:
        raise JobError(f"{run_dir} is in use by {busy}: stop it first "
                       f"(ainnoseg.runs.jobs.stop({str(run_dir)!r})), then delete it",
                       page=f"{run_dir.name} is in use by {busy}: press Stop first, then "
                            "delete it.")
    if not _an_ainnoseg_run(run_dir):
        raise JobError(f"{run_dir} holds no ainnoseg run: nothing was deleted",
                       page=f"{run_dir} holds no ainnoseg run: nothing was deleted.")
    shutil.rmtree(run_dir)


def _an_ainnoseg_run(run_dir):
    """Whether `run_dir` holds a run's files with a config that names one of
    the models, or a job record of an ainnoseg command: a folder that merely
    holds a config.yaml of something else is never taken for a run."""
    if run_kind(run_dir) is None:
        return False
    if load_run(run_dir).model in list_models():
        return True
    record = _quietly(supervisor.read_record, run_dir) or {}
    command = record.get("command") or []
    return any(command[i:i + 2] == ["-m", "ainnoseg"] for i in range(len(command)))
