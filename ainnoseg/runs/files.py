"""Reading the files of a run directory: the one JSON and the one JSON-lines
reader, YAML configs, checkpoints' facts and job logs.

Given a list `errors`, a reader is tolerant, for pages that show many runs: a
corrupt or half-written file costs that file only, it returns None (or what
it could read) and appends a sentence naming the file to `errors`. Without
one it is strict, for code that must not go on with a damaged file: it
raises ValueError naming the file (and line).
"""

import json
import re
from pathlib import Path

import yaml

LOG_TAIL_BYTES = 64 * 1024
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit))(: .*)?$")
_checkpoint_cache = {}  # (path, mtime_ns, size) -> (step, config)


def read_json(path, errors=None):
    """The JSON value at `path`, or None if there is no such file."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        return _bad(f"{path} is not readable JSON ({error})", errors)


def _bad(sentence, errors):
    """None, with `sentence` noted in `errors`; without `errors`, ValueError."""
    if errors is None:
        raise ValueError(sentence)
    errors.append(sentence)
    return None


def read_yaml(path, errors):
    """The mapping in the YAML file at `path`, or None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        errors.append(f"{path} is not readable YAML ({str(error).splitlines()[0]})")
        return None
    if not isinstance(values, dict):
        errors.append(f"{path} holds no mapping of config keys")
        return None
    return values


def read_jsonl(path, errors=None):
    """The JSON objects of a JSON-lines file ([] if there is none). A last line
    without its newline is being written, or was cut short by a kill, and is
    skipped quietly; any other line that is not a JSON object is bad."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        text = path.read_text()
    except OSError as error:
        return _bad(f"cannot read {path} ({error})", errors) or []
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        elif number < len(lines):  # the last piece (no newline yet) is still being written
            _bad(f"{path}, line {number}, is not a JSON object: {line[:60]!r}", errors)
    return records


def checkpoint_facts(path, errors):
    """(step, config dict) of the checkpoint at `path`, or (None, None). Read
    memory-mapped, so the weights are not loaded; cached by modification time."""
    path = Path(path)
    if not path.is_file():
        return None, None
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _checkpoint_cache:
        import torch

        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            _checkpoint_cache[key] = (int(state["step"]), dict(state["config"]))
        except Exception as error:  # any unreadable file: name it, list the other runs
            errors.append(f"cannot read checkpoint {path} ({str(error).splitlines()[0][:200]})")
            return None, None
    return _checkpoint_cache[key]


def log_lines(path, count=40):
    """The last `count` lines of a log, each as a terminal shows it: a
    progress bar's carriage returns keep only the last redraw of its line."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - LOG_TAIL_BYTES))
        text = handle.read().decode("utf-8", errors="replace")
    lines = [line.rstrip("\r").split("\r")[-1] for line in text.split("\n")]
    if size > LOG_TAIL_BYTES:
        lines = lines[1:]  # cut in the middle
    while lines and not lines[-1].strip():
        lines.pop()
    return lines[-count:]


def log_error(lines):
    """The error a failed job reported, from its log lines after the last job
    start: the CLI's "error: ..." line, else the last line of a traceback."""
    starts = [i for i, line in enumerate(lines) if line.startswith("===") and "job started" in line]
    lines = lines[starts[-1] + 1:] if starts else lines
    for line in reversed(lines):
        if line.startswith("error:"):
            return line[len("error:"):].strip()
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line.strip()):
            return line.strip()
    return None


def event_sessions(run_dir):
    """(start, pid, host, last write) of each TensorBoard event file, oldest
    first: one per start or resume of a training run, named
    events.out.tfevents.<start>.<host>.<pid>.<n> by the process that wrote it."""
    sessions = []
    for path in Path(run_dir).glob("events.out.tfevents.*"):
        parts = path.name.split(".")
        try:
            sessions.append((float(parts[3]), int(parts[-2]), ".".join(parts[4:-2]),
                             path.stat().st_mtime))
        except (IndexError, ValueError, OSError):
            continue
    return sorted(sessions)


def scalars(values):
    """The numeric entries of a dict (lists like per-class IoU dropped): a table row."""
    return {key: value for key, value in (values or {}).items()
            if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))}


def curves(records, phase, round_index=None):
    """metrics.jsonl records -> (loss rows, val rows), each tagged with its phase and round."""
    tag = {"phase": phase, "round": round_index}
    loss_rows, val_rows = [], []
    for record in records:
        if "step" not in record:
            continue
        if "loss" in record:
            loss_rows.append({**tag, **scalars(record)})
        val = {key[4:]: value for key, value in scalars(record).items() if key.startswith("val.")}
        if val:
            val_rows.append({**tag, "step": record["step"], **val})
    return loss_rows, val_rows
