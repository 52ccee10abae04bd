"""A run directory has one writer at a time and only ever holds a run: an
existing folder of other files is refused untouched, a second writer is
refused with the first one's pid, a killed writer's lock and temporary files
are taken over and removed, a run killed before its first checkpoint starts
afresh, non-finite weights are never saved, a full disk leaves the previous
checkpoint, and a job whose supervisor was killed can still be stopped."""

import errno
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from ainnoseg import files as ainnoseg_files
from ainnoseg import runs
from ainnoseg.checkpoints.files import load_checkpoint
from ainnoseg.cli import main
from ainnoseg.config import load_config
from ainnoseg.engine.train import train
from ainnoseg.runs import jobs, supervisor
from ainnoseg.runs.files import read_jsonl
from data_trees import folder_tree

TINY = "configs/synthetic_tiny.yaml"
TIMEOUT = 300


def _run(argv):
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code


def _cli(*args, timeout=TIMEOUT):
    """`ainnoseg ARGS` in its own process: (exit status, stdout, stderr)."""
    done = subprocess.run([sys.executable, "-m", "ainnoseg", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    return done.returncode, done.stdout, done.stderr


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def _finite(state):
    return all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


# Item: a run directory is new, empty, or a run


@pytest.fixture
def foreign_folder(tmp_path):
    """An existing folder that holds files of something else (as /etc does)."""
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "passwd").write_text("root:x:0:0\n")
    (folder / "hosts.d").mkdir()
    return folder


def test_training_into_a_folder_that_holds_no_run_is_refused_untouched(foreign_folder, capsys):
    before = _listing(foreign_folder)
    assert _run(["train", TINY, f"run_dir={foreign_folder}"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"error: {foreign_folder} is an existing folder that holds no run")
    assert "passwd" in error and "run_dir=" in error
    assert _listing(foreign_folder) == before  # not even a lock file
    assert _run(["selftrain", "configs/selftrain_synthetic_tiny.yaml",
                 f"run_dir={foreign_folder}"]) == 2
    assert _listing(foreign_folder) == before


def test_launching_into_a_folder_that_holds_no_run_is_refused_untouched(foreign_folder):
    before = _listing(foreign_folder)
    try:
        with pytest.raises(jobs.JobError, match="holds no run") as refused:
            jobs.launch("train", TINY, run_dir=foreign_folder)
    finally:
        if (foreign_folder / supervisor.RECORD).is_file():  # launched after all: end it
            jobs.stop(foreign_folder, timeout=10)
    assert "choose another run name" in refused.value.page
    assert _listing(foreign_folder) == before


def test_an_empty_folder_takes_a_new_run(tmp_path):
    (tmp_path / "empty").mkdir()
    assert _run(["train", TINY, f"run_dir={tmp_path / 'empty'}", "iterations=1",
                 "eval_every=1"]) == 0
    assert (tmp_path / "empty" / "last.pt").is_file()


# Item: one writer at a time


def _start_long_run(run_dir):
    """A training process that writes `run_dir` for minutes, once its first
    checkpoint is written."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ainnoseg", "train", TINY, f"run_dir={run_dir}",
         "iterations=100000", "checkpoint_every=1", "eval_every=100000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + TIMEOUT
    while not (run_dir / "last.pt").is_file():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    return process


def test_a_second_writer_is_refused_and_a_killed_ones_leftovers_are_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    first = _start_long_run(run_dir)
    try:
        code, _, err = _cli("train", "--resume", run_dir, timeout=90)
        assert code == 2, err
        assert f"error: {run_dir} is being written by pid {first.pid} (started" in err
        code, _, err = _cli("train", TINY, f"run_dir={run_dir}")
        assert code == 2 and f"is being written by pid {first.pid}" in err, err
        with pytest.raises(jobs.JobError, match=f"pid {first.pid}"):
            jobs.launch("train", run_dir=run_dir, resume=True)
    finally:
        first.kill()  # kill -9: no chance to release or clean anything
        first.wait()
    # what a kill in the middle of a checkpoint write or a publish leaves
    (run_dir / ".last.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")
    (run_dir / ".best.pt.abc123.publishing").write_bytes(b"half a release")
    # the next writer takes the lock over, says so, and removes them; this one
    # then finds the run there and leaves it
    code, _, err = _cli("train", TINY, f"run_dir={run_dir}")
    assert code == 2 and "already holds a run" in err, err
    assert f"pid {first.pid}" in err and "taking it over" in err, err
    assert not list(run_dir.glob(".*.tmp")) and not list(run_dir.glob(".*.publishing"))


def test_two_runs_started_at_once_in_one_directory_leave_one_run(tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "ainnoseg", "train", TINY, f"run_dir={run_dir}",
               "iterations=12", "eval_every=6"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    both = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env) for _ in range(2)]
    results = [(p.communicate(timeout=TIMEOUT)[1], p.returncode)[::-1] for p in both]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "is being written by pid" in refused or "already holds a run" in refused, refused
    steps = [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl") if "loss" in r]
    assert steps == list(range(1, 13))  # one run's records, not two interleaved
    saved = load_checkpoint(run_dir / "best.pt")["config"]
    assert saved == yaml.safe_load((run_dir / "config.yaml").read_text())


def test_self_training_takes_its_run_directory_and_its_inner_runs_in_one_process(tmp_path):
    run_dir = tmp_path / "st"
    summary = None

    def busy_check(record):
        nonlocal summary
        if record["phase"] == "teacher" and record["step"] >= 1 and summary is None:
            # while the teacher trains, the self-training run and its round are taken
            summary = [jobs.active_process(run_dir), jobs.active_process(run_dir / "round_0")]

    from ainnoseg.engine.selftrain import selftrain
    selftrain(load_config("configs/selftrain_synthetic_tiny.yaml",
                          [f"run_dir={run_dir}", "rounds=0", "iterations=2"]),
              on_progress=busy_check)
    assert all(f"pid {os.getpid()}" in (holder or "") for holder in summary), summary
    assert jobs.active_process(run_dir) is None  # released at the end


# Item: a run killed before its first checkpoint starts afresh


def test_a_run_killed_before_its_first_checkpoint_starts_afresh(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = load_config(TINY, [f"run_dir={run_dir}"])
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"model": "hrnetv2_w18s"}))
    (run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 9.0}\n')
    assert _run(["train", TINY, f"run_dir={run_dir}"]) == 0
    printed = capsys.readouterr()
    notes = [line for line in (printed.out + printed.err).splitlines() if "afresh" in line]
    assert len(notes) == 1 and "before its first checkpoint" in notes[0], printed
    records = read_jsonl(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records if "loss" in r] == list(range(1, config.iterations + 1))
    assert 9.0 not in [r.get("loss") for r in records]


def test_publishing_removes_what_a_killed_publish_staged(tmp_path):
    from ainnoseg.engine.publish import publish

    run_dir, out = tmp_path / "run", tmp_path / "released"
    data = folder_tree(tmp_path / "pets", count=2, height=64, width=80)  # fast to score
    train(load_config(TINY, [f"run_dir={run_dir}", f"data={data}", "iterations=1",
                             "eval_every=1"]))
    out.mkdir()
    left = [out / ".tiny.pt.x1y2z3.publishing", out / ".manifest.json.publishing.a1b2.tmp"]
    for path in left:
        path.write_bytes(b"what a kill -9 left")
    publish(run_dir, out, "tiny", amp="off", ms_scales=(1.0,))
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "tiny.pt"]


# Item: diverging training never saves non-finite weights, and its advice works


def test_a_diverging_run_keeps_finite_checkpoints_and_says_how_to_restart(tmp_path, capsys):
    run_dir = tmp_path / "huge_lr"
    assert _run(["train", TINY, f"run_dir={run_dir}", "lr=1e9", "iterations=8",
                 "checkpoint_every=1", "eval_every=100", "amp=off"]) == 2
    err = capsys.readouterr().err
    error = [line for line in err.splitlines() if "error:" in line]
    assert len(error) == 1 and error[0].startswith("error: "), err  # not behind the bar
    assert "--resume" not in error[0]
    if (run_dir / "last.pt").is_file():
        assert _finite(load_checkpoint(run_dir / "last.pt"))
    command = re.search(r"`ainnoseg train ([^`]*)`", error[0])
    assert command, error[0]
    config_file, *overrides = shlex.split(command.group(1))
    restarted = load_config(config_file, overrides)
    assert restarted.lr < 1e9 and restarted.run_dir != str(run_dir)
    assert _finite(load_checkpoint(restarted.init_checkpoint))


def test_weights_that_became_non_finite_are_not_saved(tmp_path, monkeypatch):
    import ainnoseg.engine.train as train_module

    models, build = [], train_module.build_model
    monkeypatch.setattr(train_module, "build_model",
                        lambda *args, **kwargs: models.append(build(*args, **kwargs)) or models[-1])

    def poison(step, total):
        if step == 2:  # after the step's update, before its checkpoint
            with torch.no_grad():
                next(models[0].parameters()).fill_(float("nan"))

    run_dir = tmp_path / "run"
    with pytest.raises(FloatingPointError, match="non-finite .* step 2") as stopped:
        train(load_config(TINY, [f"run_dir={run_dir}", "checkpoint_every=1", "eval_every=100"]),
              on_step=poison)
    assert load_checkpoint(run_dir / "last.pt")["step"] == 1
    assert _finite(load_checkpoint(run_dir / "last.pt"))
    assert f"init_checkpoint={run_dir / 'last.pt'}" in str(stopped.value)


# Item: one clear line instead of a traceback


def test_a_full_disk_while_checkpointing_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    full = {"now": False}
    real_fdopen = os.fdopen

    class FullDisk:
        """A file on a disk that fills up after a megabyte, as torch.save meets it."""

        def __init__(self, handle):
            self.handle, self.written = handle, 0

        def write(self, data):
            self.written += len(data)
            if full["now"] and self.written > 1_000_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.handle.write(data)

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(ainnoseg_files.os, "fdopen",
                        lambda *args, **kwargs: FullDisk(real_fdopen(*args, **kwargs)))
    with pytest.raises(OSError) as failed:  # the disk fills after step 1's checkpoint
        train(load_config(TINY, [f"run_dir={run_dir}", "checkpoint_every=1", "eval_every=100"]),
              on_step=lambda step, total: full.update(now=step >= 2))
    message = str(failed.value)
    assert "No space left on device" in message and str(run_dir / "last.pt") in message
    assert "intact" in message
    assert load_checkpoint(run_dir / "last.pt")["step"] == 1
    assert not list(run_dir.glob(".*.tmp"))


def test_a_runs_folder_with_unreadable_folders_is_listed_quietly():
    found = runs.find_run_dirs("/")  # /proc/1/cwd, three deep, cannot be read
    assert isinstance(found, list)
    assert isinstance(jobs.running_pids("/"), set)


# Item: a job whose supervisor was killed still stops, and reads as running


def _orphaned_job(tmp_path):
    """A job whose supervisor (sh) was killed with SIGKILL while its child
    (sleep) lives on in the supervisor's process group."""
    leader = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; wait"], start_new_session=True,
                              stdout=subprocess.PIPE, text=True)
    child = int(leader.stdout.readline())
    now = time.time()
    supervisor.write_record(tmp_path, {"kind": "train", "pid": leader.pid, "started": now,
                                       "child_pid": child, "child_started": now,
                                       "ended": None, "stop_requested": None})
    os.kill(leader.pid, signal.SIGKILL)
    leader.wait()
    assert supervisor.process_alive(child)
    return child


def test_a_job_whose_supervisor_was_killed_still_reads_as_running_and_stops(tmp_path):
    child = _orphaned_job(tmp_path)
    try:
        assert runs.load_run(tmp_path).status == "running"
        assert child in jobs.running_pids(tmp_path)
        record = jobs.stop(tmp_path, timeout=5)
        assert record["stop_requested"] and record["signal"] == "SIGTERM"
        deadline = time.monotonic() + 5
        while supervisor.process_alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not supervisor.process_alive(child)
        assert runs.load_run(tmp_path).status == "stopped"
    finally:
        if supervisor.process_alive(child):
            os.kill(child, signal.SIGKILL)


# Item: a failure shows as soon as the job says so


def test_a_job_that_reported_an_error_reads_as_failed_while_it_ends(tmp_path):
    process = subprocess.Popen(["sleep", "60"])
    try:
        supervisor.write_record(tmp_path, {"kind": "train", "pid": process.pid,
                                           "started": time.time(), "ended": None})
        (tmp_path / supervisor.LOG).write_text(
            "=== 2026-01-01 00:00:00 job started (supervisor pid 1): python -m ainnoseg\n"
            "error: no dataset folder at data/nowhere\n")
        run = runs.load_run(tmp_path)
        assert run.status == "failed" and "no dataset folder at data/nowhere" in run.error
    finally:
        process.kill()
        process.wait()
