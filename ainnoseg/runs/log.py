"""What a run directory records: metrics as JSON lines and TensorBoard events.

    run_dir/metrics.jsonl     one JSON object per logged step or evaluation
    run_dir/events.*          TensorBoard
(the names: runs/layout.py)
"""

import json
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from ..files import atomic_write, json_ready
from . import layout
from .files import read_jsonl


class RunLog:
    """Appends records; on resume, drops those past the checkpoint's step so
    the log reads as one uninterrupted run. That rewrite is atomic: a process
    killed during it leaves the old log whole."""

    def __init__(self, run_dir, start_step=0):
        self.path = Path(run_dir) / layout.METRICS_LOG
        try:
            records = read_jsonl(self.path)
        except ValueError as error:
            raise ValueError(f"{error}; remove that line to resume") from None
        kept = [r for r in records if r.get("step", 0) <= start_step]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        atomic_write(self.path, lambda handle: handle.write(text.encode()))
        self.writer = SummaryWriter(str(run_dir), purge_step=start_step + 1 if start_step else None)

    def write(self, record):
        record = json_ready(record)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        step = record["step"]
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)) and value is not None:
                self.writer.add_scalar(key.replace(".", "/"), value, step)

    def close(self):
        self.writer.close()
