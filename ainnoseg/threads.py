"""One thread policy for every process the project starts.

On a machine with few cores, two PyTorch processes that each take every core
do not halve their speed, they collapse: OpenMP threads spin at their
barriers and preempt each other, and a step waits for its slowest thread
(measured 8-15x slower on 2 cores; `benchmarks/contention.py`). So every
process decides its threads from facts read at the moment it starts work:

- the cores this process may run on;
- the training processes running on the machine now (`ainnoseg train` or
  `selftrain`, however started) and the threads each was given;
- whether an interactive app (the dashboard, the demo, a notebook) shares
  the machine, or a command a user waits for in a terminal (`ainnoseg eval`,
  `predict`, `publish`, `export`) runs.

The decisions (`keep` is one core in four, at least one, on a machine of two
or more cores):

- A **training process** (a job launched by `ainnoseg.runs.jobs.launch`, or
  `ainnoseg train` in a terminal) gets the cores left after `keep` are kept
  for an interactive app or a waiting command (when one runs, or an app
  launched the job), divided among it and the other training processes, at
  least 1. A launched job decides again every `REPLAN_S` seconds while it
  trains, so a job that started alone gives cores back when a second job, an
  app or an `eval` in a terminal starts, and takes them again after;
  `ainnoseg train` in a terminal decides once, at its start.
- A launched job also sleeps its idle OpenMP threads (OMP_WAIT_POLICY=PASSIVE)
  instead of spinning, runs at nice 10, so a page the user waits for wins a
  core they both want, and has one inter-op thread (training uses none).
- A **foreground** process (an app answering a request, or `predict`, `eval`
  typed in a terminal) takes every core when no training process runs, and
  the `keep` cores the training leaves it otherwise; the apps decide again at
  every request.
- An explicit OMP_NUM_THREADS in a command's environment wins: the user has
  decided.

    plan = threads.for_job(threads.read_machine(), interactive=True)
    plan.environment()   # {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", ...}
    with threads.foreground():   # an app's request: what the jobs leave
        labels = ainnoseg.segment_image(model, image)
"""

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

BACKGROUND_NICE = 10
REPLAN_S = 15.0  # a training process reconsiders its threads this often
TRAINING_COMMANDS = ("train", "selftrain")
# Commands that run models while a user waits for them in a terminal.
WAITED_FOR_COMMANDS = ("eval", "predict", "publish", "export")
# Arguments that mark an interactive app of this project in a process's command line.
APP_SCRIPTS = ("app/dashboard.py", "app/demo.py")
FACTS_TTL_S = 2.0  # an app's requests reread /proc at most this often
# Set by `ainnoseg.runs.jobs.launch` in a job's environment: "interactive" when an
# app or a notebook launched it (the job keeps a core for it), "background"
# otherwise, "fixed" when the launcher fixed its threads (never decided again).
JOB_VARIABLE = "AINNOSEG_JOB"


@dataclass(frozen=True)
class Machine:
    """What the policy decides from: the cores this process may run on, and
    the training processes (`jobs`), interactive apps (`apps`) and commands
    a user waits for in a terminal (`waiting`) of this project running now,
    this process not counted."""

    cores: int
    jobs: int = 0
    apps: int = 0
    waiting: int = 0


@dataclass(frozen=True)
class Plan:
    """Threads and priority for one process."""

    threads: int
    interop: int = 1
    nice: int = 0
    passive: bool = False
    why: str = field(default="", compare=False)

    def environment(self):
        """The environment variables that give a new process this plan's threads."""
        env = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        if self.passive:
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        return env


def available_cores():
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def kept_for_apps(cores):
    """The cores training leaves to an interactive app: one in four, at least one."""
    return max(1, cores // 4) if cores > 1 else 0


def for_training(machine, interactive=False):
    """The threads of a training process on `machine`; `interactive`: an app
    or a notebook launched it. Priority and wait policy: `for_job`."""
    keep = kept_for_apps(machine.cores) if interactive or machine.apps or machine.waiting else 0
    threads = max(1, (machine.cores - keep) // (machine.jobs + 1))
    why = (f"{machine.cores} cores, {machine.jobs} other training process(es), "
           f"{keep} kept for an interactive app or a command a user waits for")
    return Plan(threads, interop=1, why=why)


def for_job(machine, interactive=False):
    """The plan of a background job launched on `machine`: `for_training`'s
    threads, idle threads asleep, nice 10."""
    plan = for_training(machine, interactive)
    return Plan(plan.threads, interop=1, nice=BACKGROUND_NICE, passive=True, why=plan.why)


def for_foreground(machine):
    """The plan of a process a user is waiting for: every core when nothing
    trains, else the cores training leaves to apps."""
    if machine.jobs == 0:
        return Plan(machine.cores, interop=1, why=f"{machine.cores} cores, nothing training")
    threads = max(1, kept_for_apps(machine.cores))
    return Plan(threads, interop=1,
                why=f"{machine.cores} cores, {machine.jobs} training process(es)")


def _command_line(pid):
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _is_loader_worker(pid):
    """Whether `pid` is a PyTorch DataLoader worker (it names itself so); one
    outlives its killed training process for a few seconds."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "pt_data_worker"
    except OSError:
        return False


def _parent(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def ainnoseg_command(argv):
    """The `ainnoseg` subcommand that `argv` runs in a Python process (as
    `python -m ainnoseg`, the `ainnoseg` script or under torchrun), else None;
    None too for the job supervisor that waits for one and a wrapper such as
    `timeout` whose arguments name it."""
    if not argv or not Path(argv[0]).name.startswith("python"):
        return None
    if any(Path(arg).name == "supervisor.py" for arg in argv):
        return None
    return next((following for arg, following in zip(argv, argv[1:])
                 if Path(arg).name == "ainnoseg"), None)


def is_training_command(argv):
    """Whether `argv` is a Python process running `ainnoseg train|selftrain`."""
    return ainnoseg_command(argv) in TRAINING_COMMANDS


def is_app_command(argv):
    """Whether `argv` runs the dashboard or the demo."""
    return any(arg.replace("\\", "/").endswith(APP_SCRIPTS) for arg in argv)


def read_machine(pids=None):
    """The facts, read from /proc (on a system without it: none running).
    `pids`: the processes to look at (default: all but this one)."""
    cores = available_cores()
    proc = Path("/proc")
    if pids is None:
        if not proc.is_dir():
            return Machine(cores)
        pids = [int(e.name) for e in proc.iterdir() if e.name.isdigit()]
        pids = [pid for pid in pids if pid != os.getpid()]
    training, waiting, apps = set(), set(), 0
    for pid in pids:
        argv = _command_line(pid)
        command = ainnoseg_command(argv)
        if command in TRAINING_COMMANDS + WAITED_FOR_COMMANDS:
            if not _is_loader_worker(pid):
                (training if command in TRAINING_COMMANDS else waiting).add(pid)
        elif is_app_command(argv):
            apps += 1
    # A DataLoader worker is a copy of its process, not a second one: it names
    # itself pt_data_worker, and before it does its parent is that process.
    return Machine(cores, jobs=sum(1 for pid in training if _parent(pid) not in training),
                   apps=apps, waiting=sum(1 for pid in waiting if _parent(pid) not in waiting))


def is_interactive():
    """Whether this process is an app a user works in: a notebook kernel, or
    the dashboard or the demo (which say so with `serve_interactively`)."""
    return _INTERACTIVE or "ipykernel" in sys.modules


_INTERACTIVE = False


def serve_interactively():
    """Mark this process as an interactive app: jobs it launches keep a core for it."""
    global _INTERACTIVE
    _INTERACTIVE = True


def explicit_threads():
    """OMP_NUM_THREADS as the user set it for this process, or None."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


_facts = {"read": -1e9, "machine": None}


def _recent_machine():
    now = time.monotonic()
    if now - _facts["read"] > FACTS_TTL_S:
        _facts.update(read=now, machine=read_machine())
    return _facts["machine"]


@contextlib.contextmanager
def foreground():
    """Run the block (an app's request) with the cores the jobs running now
    leave; this process's thread count is restored after it."""
    before = torch.get_num_threads()
    planned = explicit_threads() or for_foreground(_recent_machine()).threads
    torch.set_num_threads(planned)
    try:
        yield planned
    finally:
        torch.set_num_threads(before)


def apply_for_command(command):
    """At the start of an `ainnoseg` command: a launched job keeps the plan its
    launcher gave it (environment and nice) and gets one inter-op thread; a
    command that runs models, typed in a terminal, plans its threads once,
    like a job (training) or as `for_foreground` (the others), unless
    OMP_NUM_THREADS says otherwise. Returns the threads used."""
    if command not in TRAINING_COMMANDS + WAITED_FOR_COMMANDS:
        return torch.get_num_threads()
    with contextlib.suppress(RuntimeError):  # one inter-op thread: nothing here uses more
        torch.set_num_interop_threads(1)
    if os.environ.get(JOB_VARIABLE):
        return torch.get_num_threads()
    machine = read_machine()
    plan = for_training(machine) if command in TRAINING_COMMANDS else for_foreground(machine)
    threads = explicit_threads() or plan.threads
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return torch.get_num_threads()


class TrainingThreads:
    """A training process's threads, decided again every `REPLAN_S` seconds
    (`update()` once a step), so jobs share the cores as they come and go.
    On in the jobs the policy planned."""

    def __init__(self):
        job = os.environ.get(JOB_VARIABLE)
        # Jobs the policy planned; never a "fixed" job, `ainnoseg train`
        # typed in a terminal (planned once, at its start) nor `train()`
        # called from a notebook or a test, whose threads are their caller's.
        self.enabled = job in ("interactive", "background")
        self.interactive = job == "interactive"
        self.next_check = time.monotonic() + REPLAN_S

    def update(self):
        """Set this process's threads to the policy's, at most every REPLAN_S."""
        if not self.enabled or time.monotonic() < self.next_check:
            return torch.get_num_threads()
        self.next_check = time.monotonic() + REPLAN_S
        threads = for_training(read_machine(), self.interactive).threads
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        return threads
