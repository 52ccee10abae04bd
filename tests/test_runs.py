"""Reading run directories: a self-training run's rounds, the status rules,
the whole-run ETA, logs, and run directories with corrupt files."""

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import torch

from ainnoseg import runs
from ainnoseg.config import from_dict, save_config
from ainnoseg.engine.selftrain import selftrain
from ainnoseg.runs import judge_status
from ainnoseg.runs.eta import phase_rates, selftrain_remaining, train_remaining
from ainnoseg.runs.files import log_error, log_lines

TINY_SELFTRAIN = {
    "data": "synthetic", "crop_size": [64, 80], "scale": [64, 80], "batch_size": 2,
    "workers": 0, "iterations": 2, "eval_every": 2, "val_limit": 1, "log_every": 1,
    "checkpoint_every": 1, "model": "hrnetv2_w18s", "unlabeled": "synthetic",
    "unlabeled_split": "test", "unlabeled_limit": 2, "rounds": 1, "student_iterations": 2,
    "finetune_iterations": 2, "pseudo_scales": [1.0], "pseudo_flip": False, "pseudo_batch": 2,
}
NOW = time.time()
ALIVE = {"pid": os.getpid(), "started": NOW}  # this very process
GONE = {"pid": os.getpid(), "started": 0.0}  # its pid, but the process of 1970 is long gone


@pytest.fixture(scope="module")
def selftrained(tmp_path_factory):
    """A one-round self-training run, trained in this process."""
    root = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        selftrain(from_dict({**TINY_SELFTRAIN, "run_dir": str(root / "selftrain")}))
    finally:
        torch.set_num_threads(threads)
    return root / "selftrain"


def test_a_selftraining_run_reads_back_with_its_rounds(selftrained):
    listed = runs.list_runs(selftrained.parent)
    assert [r.path for r in listed] == [str(selftrained)]  # not round_0/, round_1/student/, ...
    run = listed[0]
    assert (run.kind, run.status, run.error) == ("selftrain", "finished", None)
    assert (run.model, run.dataset, run.round, run.phase) == ("hrnetv2_w18s", "synthetic", 1,
                                                              "eval")
    assert (run.eta_s, run.remaining) == (0.0, [])
    assert [row["round"] for row in run.rounds] == [0, 1]
    assert run.rounds[0]["pseudo"] is None and run.rounds[1]["pseudo"]["images"] == 2
    assert run.rounds[1]["labelled_by"] == str(selftrained / "round_0" / "last.pt")
    for row in run.rounds:
        saved = json.loads((selftrained / f"round_{row['round']}" / "metrics.json").read_text())
        assert row["val"]["mean_iou"] == saved["mean_iou"]
        assert row["checkpoint"] == saved["checkpoint"]
        assert row["seconds"] > 0
    best = max(run.rounds, key=lambda row: row["val"]["mean_iou"])
    assert (run.best["round"], run.best["path"]) == (best["round"], best["checkpoint"])
    phases = {(row["phase"], row["round"]) for row in run.curves["loss"]}
    assert phases == {("teacher", 0), ("student", 1), ("fine-tune", 1)}
    assert {(row["phase"], row["step"]) for row in run.curves["val"]} == \
        {("teacher", 2), ("student", 2), ("fine-tune", 2)}
    assert run.command[-3:] == ["selftrain", str(selftrained / "selftrain.yaml"),
                                f"run_dir={selftrained}_again"]
    assert run.heartbeat["final"] and run.heartbeat["phase"] == "eval"
    assert run.duration_s > 0 and run.started <= run.updated


def test_an_unfinished_selftraining_run_has_an_eta_for_all_its_rounds(selftrained, tmp_path):
    """The same run cut in round 1's student phase: the rest of that phase, the
    fine-tune and the evaluation remain, costed at the rates measured so far."""
    records = [json.loads(line) for line in
               (selftrained / "progress.jsonl").read_text().splitlines()]
    cut = next(i for i, r in enumerate(records) if r["phase"] == "student" and r["step"] == 1)
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "selftrain.yaml").write_text((selftrained / "selftrain.yaml").read_text())
    (partial / "progress.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records[:cut + 1]))
    run = runs.load_run(partial)
    assert (run.status, run.round, run.phase, run.step, run.total) == ("stopped", 1, "student",
                                                                       1, 2)
    rates = phase_rates(records[:cut + 1])
    assert [(r["phase"], r["steps"]) for r in run.remaining] == [("student", 1),
                                                                 ("fine-tune", 2), ("eval", 1)]
    assert run.eta_s == pytest.approx(rates["student"] + 2 * rates["fine-tune"] + rates["eval"],
                                      abs=0.2)


def _records(*segments):
    """progress records: (round, phase, steps, seconds per step) one after another."""
    records, clock = [], 1000.0
    for round_index, phase, steps, rate in segments:
        for step in range(steps + 1):
            records.append({"time": clock + step * rate, "round": round_index, "phase": phase,
                            "step": step, "total": steps, "eta_s": None if step == 0 else 1.0})
        clock += steps * rate + 3.0  # setting up the next phase is not counted
    return records


def test_the_eta_covers_every_remaining_phase_of_every_round():
    config = {"iterations": 10, "rounds": 2, "student_iterations": 6, "finetune_iterations": 4}
    records = _records((0, "teacher", 10, 2.0), (0, "eval", 1, 5.0), (1, "pseudo-label", 4, 3.0))
    records += _records((1, "student", 6, 1.0))[:4]  # student at step 3 of 6
    rows, eta = selftrain_remaining(config, records, pool_size=4, finished=False)
    trained = (10 * 2.0 + 3 * 1.0) / 13  # the fine-tune has no rate of its own yet
    assert [(r["round"], r["phase"], r["steps"]) for r in rows] == [
        (1, "student", 3), (1, "fine-tune", 4), (1, "eval", 1),
        (2, "pseudo-label", 4), (2, "student", 6), (2, "fine-tune", 4), (2, "eval", 1)]
    expected = 3 * 1.0 + 4 * trained + 5.0 + 4 * 3.0 + 6 * 1.0 + 4 * trained + 5.0
    assert eta == pytest.approx(expected, abs=0.2)
    # before any pseudo-labelling, an unknown pool leaves the total unknown
    _, eta = selftrain_remaining(config, records[:12], pool_size=None, finished=False)
    assert eta is None
    assert selftrain_remaining(config, records, 4, finished=True) == ([], 0.0)
    assert train_remaining(40, 100, 0.5, finished=False)[1] == 30.0


def test_status_is_read_from_the_job_record_the_heartbeat_and_the_checkpoints():
    # A beat from another machine counts while it is fresh: its time is now,
    # not the module's import, which a slow suite leaves minutes behind.
    beat = {"time": time.time(), "pid": os.getpid(), "host": socket.gethostname(), "step": 3,
            "since": {"time": NOW, "step": 1}, "final": False}
    elsewhere = {**beat, "host": "another-machine"}
    ended = {**GONE, "ended": NOW - 60, "exit_code": 0}
    cases = [
        (None, beat, False, "running"),
        (None, {**beat, "final": True}, True, "finished"),
        (None, {**beat, "since": {"time": 0.0, "step": 1}}, False, "stopped"),  # pid reused
        (None, elsewhere, False, "running"),
        (None, {**elsewhere, "time": NOW - 3600}, False, "stopped"),
        (None, None, True, "finished"),
        ({**ALIVE, "ended": None}, None, False, "running"),
        ({**GONE, "ended": None}, None, False, "stopped"),
        ({**GONE, "ended": None}, None, True, "finished"),
        (ended, None, True, "finished"),
        ({**ended, "exit_code": -15, "signal": "SIGTERM", "stop_requested": NOW}, None, False,
         "stopped"),
        ({**ended, "exit_code": -15, "signal": "SIGTERM"}, None, False, "stopped"),
        ({**ended, "exit_code": -9, "signal": "SIGKILL"}, None, False, "failed"),
        ({**ended, "exit_code": 2}, None, False, "failed"),
        # resumed in a terminal after the job failed, and finished there
        ({**ended, "exit_code": 2}, {**beat, "final": True}, True, "finished"),
    ]
    for job, heartbeat, complete, status in cases:
        assert judge_status(job, heartbeat, complete)[0] == status, (job, heartbeat, complete)
    assert "exit code 2" in judge_status({**ended, "exit_code": 2}, None, False)[1]


def test_logs_keep_a_terminal_view_and_their_error_line(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("=== 2025-01-01 job started: old\nerror: an older job's problem\n"
                   "=== 2025-01-02 job started: new\n"
                   " 10%|#  | 1/10\r 20%|## | 2/10\r 30%|###| 3/10\n"
                   "Traceback (most recent call last):\n  File \"x.py\", line 1\n"
                   "ainnoseg.data.DataError: no images in data/train\n=== job ended: exit code 1\n")
    lines = log_lines(log)
    assert " 30%|###| 3/10" in lines and not any("20%" in line for line in lines)
    assert log_error(lines) == "ainnoseg.data.DataError: no images in data/train"
    assert log_error(lines + ["error: the CLI's own message"]) == "the CLI's own message"
    assert log_lines(log, count=2) == ["ainnoseg.data.DataError: no images in data/train",
                                       "=== job ended: exit code 1"]


def _fake_train_run(run_dir, **values):
    """A training run's files written by hand (no process, no training)."""
    run_dir.mkdir(parents=True)
    save_config(from_dict({"model": "hrnetv2_w18s", "iterations": 100, "batch_size": 4,
                           **values}), run_dir / "config.yaml")
    records = [{"step": s, "loss": 1.0 / s, "images_per_s": 8.0} for s in (1, 10, 20)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run_dir


def test_eta_of_a_training_run_comes_from_its_heartbeat(tmp_path):
    run_dir = _fake_train_run(tmp_path / "run")
    assert runs.load_run(run_dir).eta_s == pytest.approx(80 * 4 / 8.0)  # logged images/s
    now = time.time()  # a fresh beat from another machine
    beat = {"time": now, "pid": 1, "host": "another-machine", "step": 20, "total": 100,
            "since": {"time": now - 30.0, "step": 10}, "final": False}
    (run_dir / "heartbeat.json").write_text(json.dumps(beat))
    run = runs.load_run(run_dir)
    assert (run.status, run.step, run.eta_s) == ("running", 20, pytest.approx(240.0))


def test_a_stop_is_left_out_of_the_heartbeats_rate_and_an_evaluation_is_not(tmp_path, monkeypatch):
    from ainnoseg.runs import heartbeat
    # (wall, CPU) at each beat: steps of 2 s on two cores, a 300-s stop
    # (SIGSTOP: no CPU), then a 100-s evaluation (CPU on both cores).
    clocks = iter([(1000.0, 0.0), (1002.0, 4.0), (1302.0, 4.1), (1304.0, 8.1), (1404.0, 208.1)])
    monkeypatch.setattr(heartbeat, "clocks", lambda: next(clocks))
    run_dir = _fake_train_run(tmp_path / "run")
    beats = heartbeat.Heartbeat(run_dir, every=0.0)
    for step in (20, 21, 22, 23, 24):
        beats.beat(step, 100)
    record = heartbeat.read_heartbeat(run_dir)
    assert record["active_s"] == pytest.approx(2.0 + 2.0 + 100.0)
    assert record["time"] - record["since"]["time"] == pytest.approx(404.0)
    assert runs.load_run(run_dir).eta_s == pytest.approx((100 - 24) * 104.0 / 4)


def test_a_runs_hours_leave_out_the_stops_its_last_process_counted(tmp_path):
    run_dir = _fake_train_run(tmp_path / "run")
    for start, pid, written in ((1000.0, 11, 1500.0), (5000.0, 22, 5900.0)):
        events = run_dir / f"events.out.tfevents.{start:.0f}.vm.{pid}.0"
        events.touch()
        os.utime(events, (written, written))
    beat = {"time": 5900.0, "pid": 22, "host": "another-machine", "step": 20, "total": 100,
            "since": {"time": 5010.0, "step": 10}, "final": True}
    (run_dir / "heartbeat.json").write_text(json.dumps(beat))
    assert runs.load_run(run_dir).duration_s == pytest.approx(500.0 + 900.0)  # wall spans
    beat["active_s"] = 290.0  # the process was stopped for 600 of its 890 s
    (run_dir / "heartbeat.json").write_text(json.dumps(beat))
    assert runs.load_run(run_dir).duration_s == pytest.approx(500.0 + 10.0 + 290.0)


def test_a_run_from_before_heartbeats_is_running_while_its_event_files_writer_lives(tmp_path):
    run_dir = _fake_train_run(tmp_path / "run")
    events = run_dir / f"events.out.tfevents.{int(NOW)}.{socket.gethostname()}.{os.getpid()}.0"
    events.write_bytes(b"")
    assert runs.load_run(run_dir).status == "running"  # this process wrote it
    # a heartbeat of that session decides: a notebook that trained in-process lives on
    beat = {"time": NOW + 1, "pid": os.getpid(), "host": socket.gethostname(), "step": 20,
            "since": {"time": NOW, "step": 1}, "final": True}
    (run_dir / "heartbeat.json").write_text(json.dumps(beat))
    assert runs.load_run(run_dir).status == "stopped"
    (run_dir / "heartbeat.json").unlink()
    events.rename(run_dir / f"events.out.tfevents.0.{socket.gethostname()}.{os.getpid()}.0")
    assert runs.load_run(run_dir).status == "stopped"  # its pid now names a later process


def test_corrupt_files_are_named_and_the_other_runs_still_listed(tmp_path):
    _fake_train_run(tmp_path / "good")
    bad = _fake_train_run(tmp_path / "bad")
    with (bad / "metrics.jsonl").open("a") as handle:
        handle.write("not json\n" + json.dumps({"step": 30, "loss": 0.1}) + "\n{\"step\": 4")
    (bad / "job.json").write_text("{\"pid\": 12")
    (bad / "heartbeat.json").write_text("[]")
    (bad / "last.pt").write_bytes(b"half a checkpoint")
    selfbad = tmp_path / "selfbad"
    selfbad.mkdir()
    (selfbad / "selftrain.yaml").write_text("rounds: [unclosed\n")
    (selfbad / "progress.jsonl").write_text("{}\n\x00\x00\n")
    (selfbad / "round_0").mkdir()
    (selfbad / "round_0" / "metrics.json").write_text("[1, 2]")
    half = _fake_train_run(tmp_path / "half")  # a line being written is no error
    with (half / "metrics.jsonl").open("a") as handle:
        handle.write("{\"step\": 21, \"lo")

    listed = {Path(r.path).name: r for r in runs.list_runs(tmp_path)}
    assert sorted(listed) == ["bad", "good", "half", "selfbad"]
    assert listed["good"].error is None and listed["half"].error is None
    assert listed["half"].step == 20
    error = listed["bad"].error
    for name in ("metrics.jsonl, line 4", "job.json", "heartbeat.json", "last.pt"):
        assert name in error, name
    assert listed["bad"].status == "stopped" and listed["bad"].step == 30
    assert listed["selfbad"].kind == "selftrain"
    for name in ("selftrain.yaml", "progress.jsonl, line 2", "metrics.json holds list"):
        assert name in listed["selfbad"].error, name
    assert json.loads(json.dumps(listed["bad"].to_dict()))["name"] == "bad"  # plain types


def test_load_run_of_a_folder_without_a_run_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        runs.load_run(tmp_path)
    assert runs.list_runs(tmp_path / "missing") == []


def test_a_runs_commands_work_pasted_into_another_directory(tmp_path, monkeypatch):
    """A run trained in one folder with a relative data path (as a notebook
    trains in notebooks/): its saved config names the data absolutely, its
    reproduce command trains a new run beside it from another folder, and its
    resume command finds it from there too."""
    from data_trees import camvid_tree

    from ainnoseg.config import load_config
    from ainnoseg.engine.train import train

    camvid_tree(tmp_path / "data" / "camvid", height=64, width=80)
    for folder in ("notebooks", "elsewhere"):
        (tmp_path / folder).mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "synthetic_tiny.yaml",
                         ["data=../data/camvid", "run_dir=../runs/mine", "iterations=2",
                          "eval_every=2", "checkpoint_every=2"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(config)
    finally:
        torch.set_num_threads(threads)
    mine = tmp_path / "runs" / "mine"
    run = runs.load_run(mine)
    assert run.config["data"] == str(tmp_path / "data" / "camvid")
    assert run.command[-2:] == [str(mine / "config.yaml"), f"run_dir={mine}_again"]
    assert run.resume_command[-2:] == ["--resume", str(mine)]

    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(run.command, cwd=tmp_path / "elsewhere", env=environment, check=True,
                   capture_output=True)
    assert runs.load_run(f"{mine}_again").status == "finished"
    assert runs.load_run(mine).command[-1] == f"run_dir={mine}_again2"  # the next unused one
    resumed = subprocess.run(run.resume_command, cwd=tmp_path / "elsewhere", env=environment,
                             capture_output=True, text=True)
    assert resumed.returncode == 0 and f"{mine} is finished" in resumed.stdout, resumed.stderr
