import io
import json

import pytest

from ainnoseg.runs.files import read_jsonl
from ainnoseg.runs.log import RunLog
from killed import Killed


def _records(steps):
    return "".join(json.dumps({"step": step, "loss": 1.0 / step}) + "\n" for step in steps)


def test_a_kill_while_resume_rewrites_the_log_leaves_the_old_log_whole(tmp_path, monkeypatch):
    (tmp_path / "metrics.jsonl").write_text(_records(range(1, 9)))
    opened = io.open

    def dies_halfway(file, mode="r", *args, **kwargs):
        handle = opened(file, mode, *args, **kwargs)
        if "w" in mode:
            write = handle.write

            def half(data):
                write(data[:len(data) // 2])
                handle.flush()
                raise Killed()
            handle.write = half
        return handle

    monkeypatch.setattr(io, "open", dies_halfway)
    with pytest.raises(Killed):
        RunLog(tmp_path, start_step=5)
    monkeypatch.undo()
    assert (tmp_path / "metrics.jsonl").read_text() == _records(range(1, 9))
    assert [path.name for path in tmp_path.iterdir()] == ["metrics.jsonl"]  # no temporary left
    log = RunLog(tmp_path, start_step=5)
    log.close()
    assert [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4, 5]


def test_a_last_line_cut_short_by_a_kill_is_dropped_on_resume(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(_records(range(1, 4)) + '{"step": 4, "lo')
    RunLog(tmp_path, start_step=3).close()
    assert [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2, 3]
