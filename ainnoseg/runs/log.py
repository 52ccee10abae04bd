"""What a run directory records: metrics as JSON lines and TensorBoard events.

    run_dir/config.yaml       the config, as run
    run_dir/metrics.jsonl     one JSON object per logged step or evaluation
    run_dir/events.*          TensorBoard
    run_dir/last.pt, best.pt  checkpoints
"""

import json
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from ..files import atomic_write, json_ready


def read_jsonl(path):
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _whole_records(path):
    """The records of a log whose last line a kill may have cut short (that
    line is dropped: its step is redone)."""
    path = Path(path)
    lines = path.read_text().splitlines() if path.is_file() else []
    records = []
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            if number < len(lines) - 1:
                raise ValueError(f"{path}, line {number + 1}, is not JSON: {line[:80]!r}; "
                                 "remove it to resume") from None
    return records


class RunLog:
    """Appends records; on resume, drops those past the checkpoint's step so
    the log reads as one uninterrupted run. That rewrite is atomic: a process
    killed during it leaves the old log whole."""

    def __init__(self, run_dir, start_step=0):
        self.path = Path(run_dir) / "metrics.jsonl"
        kept = [r for r in _whole_records(self.path) if r.get("step", 0) <= start_step]
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
