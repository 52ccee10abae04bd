"""heartbeat.json: a running process says, every few seconds, that it is alive
and where it is, so a dashboard can tell a running run from a stopped one and
measure its speed without guessing.

    {"time": 1765432100.5, "pid": 4242, "host": "vm", "step": 120, "total": 300,
     "since": {"time": 1765431980.1, "step": 40},   # this process's first beat
     "final": false, "round": 1, "phase": "student"}   # round/phase: self-training

`since` makes the rate of this process measurable: (time - since.time) /
(step - since.step) seconds a step, evaluations included. `final` is true on
the beat written when the work is done. `read_heartbeat` and `beating` read it
back (for `ainnoseg.runs` and `ainnoseg.runs.jobs`).
"""

import json
import os
import socket
import time
from pathlib import Path

from ..files import atomic_write
from . import layout
from .files import read_json
from .supervisor import process_alive

EVERY_S = 2.0  # at most one write this often, besides the first and the final one
# A heartbeat from another machine (a shared disk) whose process cannot be
# looked up counts as alive this long: evaluations write no beats for minutes.
STALE_S = 900.0


class Heartbeat:
    """Writes `run_dir/heartbeat.json` atomically, at most every `every` seconds.

    Args:
        run_dir: the run directory.
        enabled: False makes every call a no-op (the non-main DDP processes).
        every: minimum seconds between two writes.
    """

    def __init__(self, run_dir, enabled=True, every=EVERY_S):
        self.path = Path(run_dir) / layout.HEARTBEAT
        self.enabled, self.every = enabled, every
        self.since, self.record, self.written = None, None, 0.0

    def beat(self, step, total, final=False, **fields):
        """Record `step` of `total` (plus e.g. round=, phase=); written if the
        last write is `every` seconds old, or this is the first or final beat."""
        if not self.enabled:
            return
        now = time.time()
        if self.since is None:
            self.since = {"time": round(now, 3), "step": step}
        self.record = {"time": round(now, 3), "pid": os.getpid(), "host": socket.gethostname(),
                       "step": step, "total": total, "since": self.since, "final": final,
                       **fields}
        if final or self.written == 0.0 or now - self.written >= self.every:
            text = json.dumps(self.record)
            atomic_write(self.path, lambda handle: handle.write(text.encode()))
            self.written = now

    def finish(self):
        """The final beat: the last recorded position, marked final, written now."""
        if self.enabled and self.record is not None:
            keep = {k: v for k, v in self.record.items()
                    if k not in ("time", "pid", "host", "step", "total", "since", "final")}
            self.beat(self.record["step"], self.record["total"], final=True, **keep)


def read_heartbeat(run_dir):
    """The heartbeat record of `run_dir`, or None if there is none; ValueError
    naming the file if it is not a heartbeat."""
    path = Path(run_dir) / layout.HEARTBEAT
    record = read_json(path)
    if record is None:
        return None
    if not isinstance(record, dict) or not {"time", "pid", "step", "since"} <= set(record):
        raise ValueError(f"{path} is not a heartbeat (time, pid, step, since)")
    return record


def beating(record, now=None):
    """Whether the process that wrote heartbeat `record` still works: not
    final, and its pid alive and started before its first beat (on this
    machine); from another machine, a beat younger than STALE_S."""
    if not record or record.get("final"):
        return False
    if record.get("host") not in (None, socket.gethostname()):
        return (now or time.time()) - record["time"] < STALE_S
    return process_alive(record["pid"], started=record["since"]["time"])
