"""Run directories as a dashboard or notebook sees them: what each run is,
where it stands, how it ended and what it measured, from its files only.

    for run in ainnoseg.runs.list_runs("runs"):
        print(run.name, run.kind, run.status, run.step, run.total, run.eta_s)
    run = ainnoseg.runs.load_run("runs/synthetic_quick")
    pandas.DataFrame(run.curves["val"])      # phase, round, step, mean_iou, ... per evaluation

A run directory is a training run (`ainnoseg train`: config.yaml,
metrics.jsonl, last.pt, best.pt; see engine/train.py) or a self-training run
(`ainnoseg selftrain`: selftrain.yaml, progress.jsonl, round_*/; see
engine/selftrain.py), whose inner training runs are part of it, not runs of
their own. Either may hold heartbeat.json (engine/heartbeat.py) and, when
started by `ainnoseg.runs.jobs.launch`, job.json and job.log (supervisor.py).

Status, from those facts:
    running   its heartbeat's process is alive (a live pid that started before
              the beat), or its job's supervisor or training process is, or (a
              run written before heartbeats) the process named by its newest
              TensorBoard event file
    finished  its job exited with 0; without a job record: its last.pt reached
              the configured iterations (self-training: its last round's
              metrics.json exists)
    failed    its job exited with another code, or was killed by a signal
              other than SIGTERM, SIGINT or SIGHUP, or its log already has the
              command line's `error:` line (it is exiting); `error` holds the
              log's error line
    stopped   stopped by `ainnoseg.runs.jobs.stop` (or SIGTERM from elsewhere), or
              ended unfinished with no job record to say how (a run started in
              a terminal and interrupted); `status_reason` says which
    unknown   only where the run could not be read at all (see `error`)
A corrupt or half-written file costs only what it holds: it is named in
`error` and the rest of the run is read.
"""

import dataclasses
import shlex
import socket
from dataclasses import dataclass, field
from pathlib import Path

from . import layout, supervisor
from .commands import fill_commands
from .eta import active_seconds, selftrain_remaining, train_remaining, train_seconds_per_step
from .files import (checkpoint_facts, curves, event_sessions, log_error, log_lines, read_json,
                    read_jsonl, read_yaml, scalars)
from .heartbeat import beating, read_heartbeat

STATUSES = ("running", "finished", "failed", "stopped")
STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")
LOG_TAIL_LINES = 40


@dataclass
class Run:
    """One run directory, in plain types (`to_dict()` for JSON or a table)."""

    path: str
    name: str
    kind: str  # "train" or "selftrain"
    status: str  # see STATUSES; "unknown" where nothing could be read
    status_reason: str | None = None  # why a run counts as stopped, or failed
    error: str | None = None  # the failure's error line, and any file that could not be read
    model: str | None = None
    dataset: str | None = None
    round: int | None = None  # self-training: the current round
    phase: str | None = None  # "train"; teacher, pseudo-label, student, fine-tune, eval
    step: int | None = None  # of the current phase
    total: int | None = None  # the current phase's steps
    checkpoint_step: int | None = None  # training run: last.pt's step, where a resume starts
    eta_s: float | None = None  # seconds the whole run still needs (None: a phase unmeasured)
    remaining: list = field(default_factory=list)  # [{"round", "phase", "steps", "seconds"}]
    rounds: list = field(default_factory=list)  # self-training: per-round results
    curves: dict = field(default_factory=lambda: {"loss": [], "val": []})  # tables of rows
    best: dict | None = None  # {"path", "step", "round", "val"}: the best checkpoint
    config: dict = field(default_factory=dict)
    command: list = field(default_factory=list)  # reruns it from its saved config
    command_line: str = ""  # shlex.join(command), for display
    resume_command: list = field(default_factory=list)
    started: float | None = None  # epoch seconds of its first start
    updated: float | None = None  # its latest recorded activity
    # Seconds it ran, summed over its starts (self-training: over its phases'
    # progress records, so the setup between phases is not counted).
    duration_s: float | None = None
    log_tail: list = field(default_factory=list)  # the last lines of job.log
    job: dict | None = None  # job.json, if launched by ainnoseg.runs.jobs
    heartbeat: dict | None = None

    def to_dict(self):
        return dataclasses.asdict(self)


def run_kind(path):
    """"train", "selftrain", or None if `path` is no run directory."""
    path = Path(path)
    if (path / layout.SELFTRAIN_CONFIG).is_file():
        return "selftrain"
    if any((path / name).is_file() for name in (layout.CONFIG, layout.METRICS_LOG, layout.LAST,
                                                layout.HEARTBEAT)):
        return "train"
    if (path / supervisor.RECORD).is_file():  # launched, nothing written yet
        try:
            kind = (supervisor.read_record(path) or {}).get("kind")
        except (OSError, ValueError):
            kind = None
        return kind if kind in ("train", "selftrain") else "train"
    return None


def find_run_dirs(root="runs", depth=3):
    """The run directories under `root` (itself included), up to `depth`
    folders deep, sorted; a run's own folders are not searched, nor folders
    this process may not read (a runs folder of "/" holds /proc/1/cwd)."""
    found = []

    def visit(folder, level):
        try:
            if run_kind(folder):
                found.append(folder)
                return
            children = sorted(folder.iterdir()) if level < depth else []
        except OSError:
            return
        for child in children:
            if not child.name.startswith(".") and _is_folder(child):
                visit(child, level + 1)

    root = Path(root)
    if root.is_dir():
        visit(root, 0)
    return found


def _is_folder(path):
    try:
        return path.is_dir()
    except OSError:
        return False


def list_runs(root="runs"):
    """Every run under `root` as a `Run`, sorted by path; an unreadable one
    is listed with its `error`, never stopping the listing."""
    supervisor.reap()
    return [load_run(path) for path in find_run_dirs(root)]


def load_run(path):
    """The `Run` in directory `path`. FileNotFoundError if it holds no run;
    files that cannot be read are named in the run's `error`."""
    path = Path(path)
    kind = run_kind(path)
    if kind is None:
        raise FileNotFoundError(
            f"{path} is not a run directory (no config.yaml, selftrain.yaml, metrics.jsonl, "
            "last.pt or job.json): give a folder `ainnoseg train` or `ainnoseg selftrain` "
            "wrote, or see list_runs(root)")
    try:
        return _read_run(path, kind)
    except Exception as error:  # the last resort: one broken run must not hide the others
        return Run(path=str(path), name=path.name, kind=kind, status="unknown",
                   error=f"cannot read {path}: {type(error).__name__}: {error}")


def judge_status(job, heartbeat, complete, writer_alive=False, reported_error=False):
    """(status, reason or None) from the job record, the heartbeat, whether
    the run's work on disk is complete, whether the process that wrote its
    newest event file is alive (see the module docstring), and whether the
    job's log says it failed (the command line's `error:` line, printed as it
    exits: it is failed from then on, not running until it has ended)."""
    ended = job.get("ended") if job else None
    if job and ended is None and reported_error:
        return "failed", "it reported an error and is ending"
    if beating(heartbeat) or writer_alive:
        return "running", None
    if job and ended and heartbeat and heartbeat.get("time", 0) > ended + 1:
        job = None  # a process started elsewhere worked here after the job ended
    if job is None:
        if complete:
            return "finished", None
        return "stopped", ("ended unfinished, and no job record says how (a run started "
                           "outside ainnoseg.runs.jobs): resume it to finish")
    if ended is None:
        if supervisor.job_running(job):  # its supervisor, or its training process
            return "running", None
        if complete:
            return "finished", None
        return "stopped", (f"its job (supervisor pid {job.get('pid')}) ended without recording "
                           "an exit code: it was killed, or the machine restarted")
    code, name = job.get("exit_code"), job.get("signal")
    if code == 0:
        return "finished", None
    if job.get("stop_requested"):
        return "stopped", "stopped by ainnoseg.runs.jobs.stop"
    if name in STOP_SIGNALS:
        return "stopped", f"ended by {name} from outside ainnoseg.runs.jobs.stop"
    return "failed", f"exit code {code}" + (f" ({name})" if name else "")


def _read_run(path, kind):
    errors = []
    job = _record(supervisor.read_record, path, errors)
    heartbeat = _record(read_heartbeat, path, errors)
    run = Run(path=str(path), name=path.name, kind=kind, status="unknown", job=job,
              heartbeat=heartbeat)
    complete = (_read_selftrain if kind == "selftrain" else _read_train)(run, path, errors)
    lines = log_lines(path / supervisor.LOG, count=400)
    run.status, run.status_reason = judge_status(
        job, heartbeat, complete, kind == "train" and _writer_alive(path, heartbeat),
        _reported_error(lines))
    run.log_tail = lines[-LOG_TAIL_LINES:]
    if run.status == "failed":
        message = log_error(lines)
        errors.insert(0, f"{message} ({run.status_reason})" if message else run.status_reason)
    run.error = "; ".join(errors) or None
    run.command_line = shlex.join(run.command)
    return run


def _reported_error(lines):
    """Whether the command line printed its `error:` line since the job last started."""
    for line in reversed(lines):
        if line.startswith("error:"):
            return True
        if line.startswith("===") and "job started" in line:
            return False
    return False


def _writer_alive(path, heartbeat):
    """Whether the process that started the newest event file still runs, for
    a session no heartbeat speaks for (code from before heartbeats). Where one
    does, it decides: a notebook kernel that trained in-process lives on."""
    sessions = event_sessions(path)
    if not sessions:
        return False
    start, pid, host, _ = sessions[-1]
    if heartbeat and (heartbeat.get("since") or {}).get("time", 0) >= start - 1:
        return False
    return host == socket.gethostname() and supervisor.process_alive(pid, started=start)


def _record(read, path, errors):
    try:
        return read(path)
    except (OSError, ValueError) as error:
        errors.append(str(error))
        return None


def _read_train(run, path, errors):
    """Fill a training run's fields; returns whether last.pt reached its iterations."""
    done, saved = checkpoint_facts(path / layout.LAST, errors)
    run.config = read_yaml(path / layout.CONFIG, errors) or saved or {}
    records = read_jsonl(path / layout.METRICS_LOG, errors)
    loss_rows, val_rows = curves(records, "train")
    run.curves = {"loss": loss_rows, "val": val_rows}
    run.model, run.dataset = run.config.get("model"), run.config.get("data")
    run.phase, run.total, run.checkpoint_step = "train", run.config.get("iterations"), done
    steps = [record["step"] for record in records if isinstance(record.get("step"), int)]
    steps += [s for s in (done, (run.heartbeat or {}).get("step")) if isinstance(s, int)]
    run.step = max(steps, default=None)  # the latest of log, checkpoint and heartbeat
    complete = done is not None and run.total is not None and done >= run.total
    rate = train_seconds_per_step(run.heartbeat, loss_rows, run.config.get("batch_size"))
    run.remaining, run.eta_s = train_remaining(run.step, run.total, rate, complete)
    if val_rows and val_rows[0].get("mean_iou") is not None:
        best = max((row for row in val_rows if row.get("mean_iou") is not None),
                   key=lambda row: row["mean_iou"])  # max keeps the first best, as training does
        run.best = {"path": str(path / layout.BEST) if (path / layout.BEST).is_file() else None,
                    "step": best["step"], "round": None,
                    "val": {k: v for k, v in best.items() if k not in ("phase", "round", "step")}}
    fill_commands(run, path, "train", layout.CONFIG)
    _train_times(run, path)
    return complete


def _train_times(run, path):
    """Start, last activity and running time, from the event files (one per
    start, named by its start time and pid), the heartbeat and the job. The
    heartbeat's process counts the time it worked itself (`active_s`: the
    spans it was stopped left out); an earlier start counts from its start
    to its last write."""
    job, beat = run.job or {}, run.heartbeat or {}
    sessions, seconds = event_sessions(path), 0.0
    for start, pid, _, written in sessions:
        if pid == beat.get("pid") and beat.get("active_s") is not None:
            worked_until = beat["since"]["time"] + beat["active_s"]
            seconds += max(0.0, worked_until - start) + max(0.0, written - beat["time"])
            continue
        end = max(written, beat.get("time", 0) if pid == beat.get("pid") else 0)
        seconds += max(0.0, end - start)
    starts = [s for s, *_ in sessions] + [t for t in (job.get("started"),
                                                         (beat.get("since") or {}).get("time"))
                                            if t is not None]
    run.started = min(starts, default=None)
    marks = [w for *_, w in sessions] + [t for t in (beat.get("time"), job.get("ended"),
                                                       job.get("started")) if t is not None]
    marks += [p.stat().st_mtime for p in (path / layout.METRICS_LOG, path / layout.LAST)
              if p.is_file()]
    run.updated = max(marks, default=None)
    if sessions:
        run.duration_s = round(seconds, 1)
    elif job.get("started") is not None:
        run.duration_s = round((job.get("ended") or run.updated) - job["started"], 1)


def _read_selftrain(run, path, errors):
    """Fill a self-training run's fields; returns whether its last round is evaluated."""
    run.config = read_yaml(path / layout.SELFTRAIN_CONFIG, errors) or {}
    records = [r for r in read_jsonl(path / layout.PROGRESS, errors)
               if isinstance(r.get("time"), (int, float))]
    rounds = run.config.get("rounds", 0)
    run.model, run.dataset = run.config.get("model"), run.config.get("data")
    run.rounds = [_round_result(path, index, records, errors) for index in range(rounds + 1)]
    if records:
        last = records[-1]
        run.round, run.phase = last.get("round"), last.get("phase")
        run.step, run.total = last.get("step"), last.get("total")
    last_round = layout.round_dir(path, rounds)
    complete = bool(run.config) and (last_round / layout.ROUND_METRICS).is_file()
    run.curves = _selftrain_curves(path, rounds, errors)
    scored = [r for r in run.rounds if (r["val"] or {}).get("mean_iou") is not None]
    if scored:
        best = max(scored, key=lambda r: r["val"]["mean_iou"])
        run.best = {"path": best["checkpoint"], "step": None, "round": best["round"],
                    "val": best["val"]}
    pool_size = _pool_size(run.config, records, run.rounds)
    run.remaining, run.eta_s = selftrain_remaining(run.config, records, pool_size, complete)
    fill_commands(run, path, "selftrain", layout.SELFTRAIN_CONFIG)
    job = run.job or {}
    starts = [t for t in ([records[0]["time"]] if records else []) + [job.get("started")] if t]
    run.started = min(starts, default=None)
    marks = [t for t in ([records[-1]["time"]] if records else []) +
             [(run.heartbeat or {}).get("time"), job.get("ended"), job.get("started")] if t]
    run.updated = max(marks, default=None)
    run.duration_s = round(active_seconds(records), 1) if records else None
    return complete


def _round_result(path, index, records, errors):
    """A round's val metrics (metrics.json), pseudo-label statistics and seconds worked."""
    folder = layout.round_dir(path, index)
    metrics = _mapping(read_json(folder / layout.ROUND_METRICS, errors),
                       folder / layout.ROUND_METRICS, errors)
    stats = _mapping(read_json(folder / layout.PSEUDO_STATS, errors),
                     folder / layout.PSEUDO_STATS, errors)
    teacher = _mapping(read_json(folder / layout.TEACHER_RECORD, errors),
                       folder / layout.TEACHER_RECORD, errors)
    mine = [r for r in records if r.get("round") == index]
    return {
        "round": index,
        "checkpoint": (metrics or {}).get("checkpoint"),
        "labelled_by": (teacher or {}).get("checkpoint") if index > 0 else None,
        "val": scalars(metrics) or None,
        "class_iou": (metrics or {}).get("class_iou"),
        "pseudo": scalars(stats) or None,
        "seconds": round(active_seconds(mine), 1) if mine else None,
    }


def _mapping(value, path, errors):
    if value is not None and not isinstance(value, dict):
        errors.append(f"{path} holds {type(value).__name__}, not a mapping")
        return None
    return value


def _selftrain_curves(path, rounds, errors):
    """Loss and val tables of every inner training run, tagged by phase and round."""
    table = {"loss": [], "val": []}
    for index in range(rounds + 1):
        folder = layout.round_dir(path, index)
        parts = [(folder, "teacher")] if index == 0 else \
            [(folder / layout.STUDENT, "student"), (folder / layout.FINETUNE, "fine-tune")]
        for run_dir, phase in parts:
            loss_rows, val_rows = curves(read_jsonl(run_dir / layout.METRICS_LOG, errors),
                                         phase, index)
            table["loss"] += loss_rows
            table["val"] += val_rows
    return table


def _pool_size(config, records, rounds):
    """Images to pseudo-label a round: measured (progress, statistics), else counted."""
    for record in records:
        if record.get("phase") == "pseudo-label" and record.get("total") is not None:
            return record["total"]
    for row in rounds:
        if (row["pseudo"] or {}).get("images") is not None:
            return row["pseudo"]["images"]
    if not config or not config.get("rounds"):
        return None
    try:
        from ..data import open_pool

        return len(open_pool(config.get("unlabeled") or config.get("data"),
                             config.get("unlabeled_split", "test"),
                             config.get("unlabeled_limit", 0)))
    except Exception:  # the pool is not readable here: that phase's cost stays unknown
        return None
