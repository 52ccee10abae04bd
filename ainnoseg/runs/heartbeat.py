"""heartbeat.json: a running process says, every few seconds, that it is alive
and where it is, so a dashboard can tell a running run from a stopped one and
measure its speed without guessing.

    {"time": 1765432100.5, "pid": 4242, "host": "vm", "step": 120, "total": 300,
     "since": {"time": 1765431980.1, "step": 40},   # this process's first beat
     "active_s": 118.2,   # seconds it worked since then
     "final": false, "round": 1, "phase": "student"}   # round/phase: self-training

`since` and `active_s` make the rate of this process measurable: active_s /
(step - since.step) seconds a step, evaluations included. `active_s` is the
time since the first beat less the spans the process was stopped (SIGSTOP, a
suspended laptop): a gap between two beats longer than STOPPED_GAP_S in which
it used almost no CPU time. `final` is true on the beat written when the work
is done. `read_heartbeat` and `beating` read it back (for `ainnoseg.runs` and
`ainnoseg.runs.jobs`).
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
# A gap between two beats this long, in which the process used under
# STOPPED_CPU_SHARE of one core, was a stop, not work (an evaluation uses
# the cores between two beats).
STOPPED_GAP_S = 60.0
STOPPED_CPU_SHARE = 0.05


def clocks():
    """(wall-clock time, this process's CPU seconds over all its threads)."""
    return time.time(), time.process_time()


def worked_seconds(wall_s, cpu_s):
    """The seconds of a gap between two beats that count as work: all of
    them, unless the gap is a stop (see STOPPED_GAP_S)."""
    stopped = wall_s >= STOPPED_GAP_S and cpu_s < STOPPED_CPU_SHARE * wall_s
    return 0.0 if stopped else wall_s


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
        self.active_s, self.clocks = 0.0, None  # clocks: (wall, CPU) at the last beat

    def beat(self, step, total, final=False, **fields):
        """Record `step` of `total` (plus e.g. round=, phase=); written if the
        last write is `every` seconds old, or this is the first or final beat."""
        if not self.enabled:
            return
        now, cpu = clocks()
        if self.since is None:
            self.since = {"time": round(now, 3), "step": step}
        else:
            self.active_s += worked_seconds(now - self.clocks[0], cpu - self.clocks[1])
        self.clocks = (now, cpu)
        self.record = {"time": round(now, 3), "pid": os.getpid(), "host": socket.gethostname(),
                       "step": step, "total": total, "since": self.since,
                       "active_s": round(self.active_s, 3), "final": final, **fields}
        if final or self.written == 0.0 or now - self.written >= self.every:
            text = json.dumps(self.record)
            atomic_write(self.path, lambda handle: handle.write(text.encode()))
            self.written = now

    def finish(self):
        """The final beat: the last recorded position, marked final, written now."""
        if self.enabled and self.record is not None:
            keep = {k: v for k, v in self.record.items()
                    if k not in ("time", "pid", "host", "step", "total", "since", "active_s",
                                 "final")}
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
