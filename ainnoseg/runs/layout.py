"""The run directory: the files it holds, one writer at a time, and only runs
in run directories. Nothing else in the library spells a run file's name.

A training run directory holds CONFIG, METRICS_LOG, LAST, BEST,
CLASS_WEIGHTS, HEARTBEAT, TensorBoard's events.out.tfevents.* and SNAPSHOTS/,
its predictions over training time (runs/snapshots.py): SNAPSHOT_RECORD (the
val images it follows, chosen once), SNAPSHOT_IMAGES/ and SNAPSHOT_TRUTH/
(each image and its ground truth, <index>.png) and one folder per evaluation,
`snapshot_dir(run_dir, step)` (the predictions then, <index>.png); a job adds
supervisor.RECORD, supervisor.LOG and supervisor.LOCK. A self-training run
directory holds SELFTRAIN_CONFIG, PROGRESS, SUMMARY, HEARTBEAT and one folder
per round, `round_dir(run_dir, r)`: round 0 is the teacher's training run;
round r > 0 holds PSEUDO/ and CONFIDENCE/ (one PNG per pool image),
PSEUDO_STATS, TEACHER_RECORD, ROUND_METRICS and the training runs STUDENT/
and FINETUNE/.

    require_new_or_run(run_dir)       # an existing folder of other files is refused
    with writing(run_dir):            # RunBusy while another process writes it
        remove_leftovers(run_dir)     # what a killed writer left half-written
        ...

The writer is the process that trains (or self-trains), whether started in a
terminal or as a job's child (a job's supervisor only waits, and never takes
it). It holds a POSIX record lock (fcntl.lockf) on RUN_DIR/.writer.lock for as
long as it writes. The kernel drops the lock when the process ends, however it
ends, so a lock is never stale; and unlike flock, the lock is the process's
own, not shared with the loader workers it forks, which may outlive a killed
writer by seconds. The file says who holds it, {"pid", "started", "host",
"command"}, and is removed on release: a file left with a record names a
writer that was killed, which the next writer notes and takes over.

A process's lockf locks all go when it closes any descriptor of the file, so
this process never opens a lock file it holds a second time (`_HELD`).
"""

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path

from . import supervisor

try:
    import fcntl
except ImportError:  # Windows: no fcntl locks; one writer at a time is then up to the user
    fcntl = None

# A training run's files.
CONFIG = "config.yaml"  # the config it was started with
METRICS_LOG = "metrics.jsonl"  # a record per logged step and per evaluation
LAST = "last.pt"  # the latest checkpoint: a resume continues from it
BEST = "best.pt"  # the checkpoint of the best val mIoU
CLASS_WEIGHTS = "class_weights.json"  # the loss's class weights, counted once
HEARTBEAT = "heartbeat.json"  # a live run's pulse (runs/heartbeat.py)
EVENTS = "events.out.tfevents.*"  # TensorBoard's, one per start
SNAPSHOTS = "snapshots"  # predictions of a few val images at each evaluation
SNAPSHOT_RECORD = "images.json"  # in SNAPSHOTS/: which val images, their classes and palette
SNAPSHOT_IMAGES, SNAPSHOT_TRUTH = "images", "truth"  # in SNAPSHOTS/: <index>.png each
SNAPSHOT_STEP_PREFIX = "step_"  # SNAPSHOTS/step_000460/<index>.png: the predictions at step 460
# A self-training run's files, and those of each of its rounds.
SELFTRAIN_CONFIG = "selftrain.yaml"
PROGRESS = "progress.jsonl"  # a record per step of every phase
SUMMARY = "summary.json"  # the rounds' scores, when all are done
ROUND_PREFIX = "round_"
PSEUDO = "pseudo"  # the round's pseudo-labels, <stem>.png
CONFIDENCE = "confidence"  # the teacher's confidence, <stem>.png
PSEUDO_STATS = "pseudo_stats.json"
TEACHER_RECORD = "teacher.json"  # which checkpoint labelled the pool
ROUND_METRICS = "metrics.json"  # the round's val scores
STUDENT, FINETUNE = "student", "finetune"  # the round's two training runs
LOCK = ".writer.lock"
# The files of a run (and of a self-training run) that a new run would overwrite.
RUN_FILES = (CONFIG, METRICS_LOG, LAST, BEST, SELFTRAIN_CONFIG)
# Any of these makes a folder a run directory (one launched may hold only its job's files).
RUN_MARKERS = RUN_FILES + (PROGRESS, HEARTBEAT, supervisor.RECORD, supervisor.LOG)
# What a resume continues from, by the run's kind.
RESUMED_FROM = {"train": LAST, "selftrain": SELFTRAIN_CONFIG}
# What writers leave beside the files they write: atomic_write's temporary
# .<name>.<random>.tmp, publish's .<name>.<random>.publishing.
LEFTOVER_SUFFIXES = (".tmp", ".publishing")
TAKE_TRIES = 20  # a reader looks at the lock for an instant: try again for a moment
# run dir (resolved) -> its open lock file: the locks this process holds. A
# process may take its own run directory again (a notebook's nested calls).
_HELD = {}


class RunDirError(ValueError):
    """A run directory that cannot be written as asked: `reason` says why,
    the message adds what to do."""

    def __init__(self, reason, advice):
        super().__init__(f"{reason}: {advice}")
        self.reason = reason


class RunBusy(ValueError):
    """A run directory another process is writing."""


def round_dir(run_dir, index):
    """The folder of a self-training run's round `index` (0: the teacher's run)."""
    return Path(run_dir) / f"{ROUND_PREFIX}{index}"


def round_dirs(run_dir):
    """{r: folder} of the rounds present in a self-training run directory."""
    found = {}
    for folder in Path(run_dir).glob(f"{ROUND_PREFIX}*"):
        number = folder.name[len(ROUND_PREFIX):]
        if folder.is_dir() and number.isdigit():
            found[int(number)] = folder
    return dict(sorted(found.items()))


def snapshot_dir(run_dir, step):
    """The folder of the predictions a training run saved at evaluation `step`."""
    return Path(run_dir) / SNAPSHOTS / f"{SNAPSHOT_STEP_PREFIX}{step:06d}"


def snapshot_dirs(run_dir):
    """{step: folder} of the evaluations of a training run that saved predictions."""
    found = {}
    for folder in (Path(run_dir) / SNAPSHOTS).glob(f"{SNAPSHOT_STEP_PREFIX}*"):
        number = folder.name[len(SNAPSHOT_STEP_PREFIX):]
        if folder.is_dir() and number.isdigit():
            found[int(number)] = folder
    return dict(sorted(found.items()))


def _own_file(name):
    """A lock or a leftover: files that do not make a folder anything."""
    return name in (LOCK, supervisor.LOCK) or _leftover(name)


def _leftover(name):
    return name.startswith(".") and name.endswith(LEFTOVER_SUFFIXES)


def require_new_or_run(run_dir):
    """Refuse a run directory that exists and holds something other than a
    run: a run there would write its checkpoints, logs and lock among those
    files. A new folder, an empty one and a run's own are accepted."""
    path = Path(run_dir)
    advice = "choose a new folder, e.g. run_dir=runs/NEW_NAME, or an empty one"
    if path.exists() and not path.is_dir():
        raise RunDirError(f"{path} is a file, not a folder", advice)
    if not path.is_dir() or any((path / name).exists() for name in RUN_MARKERS):
        return
    others = sorted(child.name for child in path.iterdir() if not _own_file(child.name))
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise RunDirError(f"{path} is an existing folder that holds no run ({shown}), and a "
                          "run there would write its files among them", advice)

# What a run killed before its first checkpoint leaves: nothing a new start would lose.
EARLY_FILES = (CONFIG, METRICS_LOG)


def refuse_existing_run(run_dir):
    """Raise a RunDirError if `run_dir` holds a run: a new one there would
    overwrite its log, config and checkpoints."""
    run_dir = Path(run_dir)
    found = [name for name in RUN_FILES if (run_dir / name).exists()]
    if not found:
        return
    elsewhere = "start the new run elsewhere with run_dir=runs/NEW_NAME"
    if SELFTRAIN_CONFIG in found:
        raise RunDirError(f"{run_dir} already holds a self-training run", "continue it with "
                          f"`ainnoseg selftrain --resume {run_dir}`, or {elsewhere}")
    if LAST in found:
        raise RunDirError(f"{run_dir} already holds a run ({', '.join(found)})", "continue it "
                          f"with `ainnoseg train --resume {run_dir}`, or {elsewhere}")
    raise RunDirError(f"{run_dir} already holds files of a run ({', '.join(found)}) but no "
                      f"checkpoint to resume (--resume needs {LAST})", f"{elsewhere}, or "
                      "delete those files to start over there")


def killed_before_first_checkpoint(run_dir):
    """Whether `run_dir` holds only what a training run killed before its
    first checkpoint leaves (EARLY_FILES): nothing to resume, nothing to lose."""
    found = {name for name in RUN_FILES if (Path(run_dir) / name).exists()}
    return bool(found) and found <= set(EARLY_FILES)


def start_afresh(run_dir):
    """Clear what a run killed before its first checkpoint left, and say so."""
    run_dir = Path(run_dir)
    found = [name for name in EARLY_FILES if (run_dir / name).exists()]
    print(f"note: {run_dir} holds a run that ended before its first checkpoint "
          f"({', '.join(found)}): nothing to resume or lose, so it starts afresh there",
          file=sys.stderr, flush=True)
    for path in [run_dir / METRICS_LOG, *run_dir.glob(EVENTS)]:
        path.unlink(missing_ok=True)


def describe(holder):
    """'pid 123 (started 2026-01-01 12:00:00 on host)' for a lock record."""
    started = holder.get("started")
    clock = "?" if started is None else time.strftime("%Y-%m-%d %H:%M:%S",
                                                      time.localtime(started))
    host = holder.get("host")
    where = "" if host in (None, socket.gethostname()) else f" on {host}"
    return f"pid {holder.get('pid')} (started {clock}{where})"


def busy_message(run_dir, holder):
    """What a second writer is told: who writes `run_dir`, and what to do."""
    if not holder:
        return (f"{run_dir} is being written by another process, which is just starting: "
                "wait for it to end or stop it, or write to another folder")
    return (f"{run_dir} is being written by {describe(holder)}: wait for it to end or stop "
            f"it (a job with ainnoseg.runs.jobs.stop, else `kill {holder.get('pid')}`), or "
            "write to another folder (run_dir=...)")


def _read(handle):
    handle.seek(0)
    try:
        record = json.loads(handle.read() or "null")
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def current_writer(run_dir):
    """The lock record of the process writing `run_dir` now, or None; the
    lock is looked at, not taken."""
    path = Path(run_dir) / LOCK
    if fcntl is None or not path.is_file():
        return None
    if Path(run_dir).resolve() in _HELD:
        return _read(_HELD[Path(run_dir).resolve()])
    try:
        handle = open(path)
    except FileNotFoundError:  # released and removed just now
        return None
    with handle:
        try:
            fcntl.lockf(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:  # EACCES or EAGAIN: another process holds it
            return _read(handle) or {}
        fcntl.lockf(handle, fcntl.LOCK_UN)
    return None


def _take(run_dir):
    """Open and lock RUN_DIR/.writer.lock; RunBusy if another process holds it."""
    path = Path(run_dir) / LOCK
    for attempt in range(TAKE_TRIES):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = open(path, "a+")
        except FileNotFoundError:  # its last holder removed the folder just now
            continue
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # EACCES or EAGAIN: another process holds it
            holder = _read(handle)
            handle.close()
            if (holder and _alive(holder)) or attempt == TAKE_TRIES - 1:
                raise RunBusy(busy_message(run_dir, holder)) from None
            time.sleep(0.01)  # a writer just starting, or a reader looking
            continue
        if _same_file(handle, path):
            return handle
        handle.close()  # its last holder removed it while this one waited: open it anew
    raise RunBusy(busy_message(run_dir, None))


def _alive(holder):
    """Whether a lock record's process runs (on another machine: assumed)."""
    if holder.get("host") != socket.gethostname():
        return True
    return supervisor.process_alive(holder.get("pid"), holder.get("started"))


def _same_file(handle, path):
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def _note_killed_writer(run_dir, previous):
    """Say so where the last writer ended without releasing the lock."""
    if previous and previous.get("pid") and not (
            previous.get("pid") == os.getpid() and previous.get("host") == socket.gethostname()):
        print(f"note: {run_dir} was being written by {describe(previous)}, which ended without "
              "releasing it (killed?): taking it over", file=sys.stderr, flush=True)


@contextlib.contextmanager
def writing(run_dir, enabled=True):
    """Hold the writer lock of `run_dir` (made if missing) while the block
    writes it; RunBusy, naming the writer, if another process holds it. The
    same process may take it again inside (self-training's nested runs, a
    notebook). `enabled=False` (the other processes of a data-parallel run,
    whose main process writes) holds nothing."""
    run_dir = Path(run_dir)
    key = run_dir.resolve()
    if not enabled or fcntl is None or key in _HELD:
        yield
        return
    made = not run_dir.exists()
    handle = _take(run_dir)
    _note_killed_writer(run_dir, _read(handle))
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "started": round(time.time(), 3),
                             "host": socket.gethostname(), "command": sys.argv}))
    handle.flush()
    _HELD[key] = handle
    try:
        yield
    finally:
        del _HELD[key]
        _release(run_dir, handle, made)


def _release(run_dir, handle, made):
    """Remove the lock file, then unlock: a writer that ends leaves no trace,
    and a folder it made that holds nothing (it refused, or failed before
    writing) goes too."""
    try:
        (run_dir / LOCK).unlink(missing_ok=True)
        if made and not any(run_dir.iterdir()):
            run_dir.rmdir()
    except OSError:
        pass  # another process took it meanwhile: it is theirs now
    finally:
        handle.close()  # which unlocks


def remove_leftovers(folder):
    """Remove what killed writers left in `folder`: temporary files of
    interrupted atomic writes and publish's staged files. Only the writer
    lock's holder may call it (the job record's own temporary files are its
    writers' business, under supervisor.locked)."""
    removed = []
    for path in Path(folder).iterdir():
        name = path.name
        if _leftover(name) and not name.startswith(f".{supervisor.RECORD}.") and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(name)
    if removed:
        print(f"removed what an interrupted write left in {folder}: {', '.join(sorted(removed))}",
              file=sys.stderr, flush=True)
    return removed
