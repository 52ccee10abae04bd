"""Background jobs end to end: tiny synthetic runs launched as real detached
processes, read back through `ainnoseg.runs`: one to completion, one that
fails, one stopped mid-way and resumed exactly, two launches into one place."""

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ainnoseg import runs
from ainnoseg.config import ConfigError
from ainnoseg.runs import jobs, supervisor
from ainnoseg.runs.files import read_jsonl

CONFIG = "configs/synthetic_quick.yaml"
TINY = ["iterations=6", "eval_every=3", "crop_size=[64,80]", "scale=[64,80]", "batch_size=2",
        "workers=0", "model=hrnetv2_w18s", "val_limit=2", "log_every=1", "checkpoint_every=1"]
TIMEOUT = 300


def _launch(run_dir, overrides=TINY, **kwargs):
    # One thread each: the same arithmetic in every job, so losses compare exactly.
    return jobs.launch("train", CONFIG, overrides, run_dir=run_dir, threads=1, **kwargs)


def _losses(run_dir):
    return [(r["step"], r["loss"]) for r in read_jsonl(Path(run_dir) / "metrics.jsonl")
            if "loss" in r]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A tiny run launched in the background and waited for."""
    run_dir = tmp_path_factory.mktemp("jobs") / "finished"
    _launch(run_dir)
    jobs.wait(run_dir, timeout=TIMEOUT)
    return run_dir


def test_a_launched_run_finishes_and_reads_back(finished):
    run = runs.load_run(finished)
    assert (run.kind, run.status, run.error) == ("train", "finished", None)
    assert (run.model, run.dataset, run.phase) == ("hrnetv2_w18s", "synthetic", "train")
    assert (run.step, run.total, run.checkpoint_step, run.eta_s) == (6, 6, 6, 0.0)
    assert run.job["exit_code"] == 0 and run.job["ended"] >= run.job["started"]
    assert run.job["env"] == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                              "OMP_WAIT_POLICY": "PASSIVE", "AINNOSEG_JOB": "fixed"}
    assert run.job["command"][1:4] == ["-m", "ainnoseg", "train"]
    assert run.heartbeat["final"] and run.heartbeat["step"] == 6
    assert run.heartbeat["pid"] == run.job["child_pid"]
    assert run.job["child_started"] >= run.job["started"]  # what `stop` checks the child by
    assert [row["step"] for row in run.curves["loss"]] == [1, 2, 3, 4, 5, 6]
    assert [row["step"] for row in run.curves["val"]] == [3, 6]
    best = max(run.curves["val"], key=lambda row: row["mean_iou"])
    assert run.best["path"] == str(finished / "best.pt") and Path(run.best["path"]).is_file()
    assert (run.best["step"], run.best["val"]["mean_iou"]) == (best["step"], best["mean_iou"])
    assert run.config["iterations"] == 6 and run.config["crop_size"] == [64, 80]
    assert run.command[-2:] == [str(finished / "config.yaml"), f"run_dir={finished}_again"]
    assert run.command_line == shlex.join(run.command)
    assert run.resume_command[-2:] == ["--resume", str(finished)]
    assert any("job ended: exit code 0" in line for line in run.log_tail)
    assert run.started <= run.updated and run.duration_s > 0
    assert [r.path for r in runs.list_runs(finished.parent)] == [str(finished)]


def test_a_failing_run_reports_the_error_from_its_log(tmp_path):
    missing = tmp_path / "no_such_dataset"
    _launch(tmp_path / "bad", TINY + [f"data={missing}"])
    record = jobs.wait(tmp_path / "bad", timeout=TIMEOUT)
    run = runs.load_run(tmp_path / "bad")
    assert record["exit_code"] not in (0, None)
    assert run.status == "failed"
    assert str(missing) in run.error and f"exit code {record['exit_code']}" in run.error
    assert any(str(missing) in line for line in run.log_tail)


def test_a_stopped_run_resumes_with_the_losses_of_an_uninterrupted_one(tmp_path, finished):
    run_dir = tmp_path / "stopped"
    _launch(run_dir)
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and len(_losses(run_dir)) < 2:
        time.sleep(0.05)
    record = jobs.stop(run_dir)
    run = runs.load_run(run_dir)
    assert record["stop_requested"] and record["signal"] == "SIGTERM"
    assert (run.status, run.status_reason) == ("stopped", "stopped by ainnoseg.runs.jobs.stop")
    assert 0 < run.checkpoint_step < 6
    assert run.eta_s is not None and run.eta_s > 0  # what a resume still needs
    with pytest.raises(jobs.JobError, match="already ended"):
        jobs.stop(run_dir)

    jobs.launch("train", run_dir=run_dir, resume=True, threads=1)
    jobs.wait(run_dir, timeout=TIMEOUT)
    run = runs.load_run(run_dir)
    assert (run.status, run.checkpoint_step) == ("finished", 6)
    assert _losses(run_dir) == _losses(finished)
    assert run.job["resume"] and run.job["command"][-2:] == ["--resume", str(run_dir)]


def test_two_launches_into_one_directory_are_refused(tmp_path, finished):
    before = {p.name: p.stat().st_mtime_ns for p in finished.iterdir()}
    run_dir = tmp_path / "busy"
    first = _launch(run_dir, TINY + ["iterations=1000"])
    with pytest.raises(jobs.JobError, match=f"in use by job pid {first['pid']}"):
        _launch(run_dir)
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and not (run_dir / "last.pt").is_file():
        time.sleep(0.05)
    # nor may a resume from a terminal write there while the job's training process does
    resumed = subprocess.run([sys.executable, "-m", "ainnoseg", "train", "--resume", str(run_dir)],
                             capture_output=True, text=True, timeout=120)
    child = supervisor.read_record(run_dir)["child_pid"]
    assert resumed.returncode == 2, resumed.stderr[-2000:]
    assert f"{run_dir} is being written by pid {child} (started" in resumed.stderr
    with pytest.raises(jobs.JobError, match="already holds a run"):
        _launch(finished)
    jobs.stop(run_dir, timeout=10)
    assert runs.load_run(run_dir).status == "stopped"
    assert not supervisor.process_alive(first["pid"])
    # the other jobs never touched the finished run's files
    assert {p.name: p.stat().st_mtime_ns for p in finished.iterdir()} == before


def _group_leader(command, tmp_path):
    """A process in its own process group, recorded as the job of tmp_path."""
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE)
    supervisor.CHILDREN[process.pid] = process
    supervisor.write_record(tmp_path, {"pid": process.pid, "started": time.time(),
                                       "ended": None})
    return process


def test_stop_records_the_end_where_the_supervisor_could_not(tmp_path):
    # stopped before a supervisor could install its handler: nobody else records the end
    _group_leader(["sleep", "60"], tmp_path)
    record = jobs.stop(tmp_path, timeout=5)
    assert (record["exit_code"], record["signal"]) == (-15, "SIGTERM")
    assert record["stop_requested"] and runs.load_run(tmp_path).status == "stopped"


def test_a_job_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path):
    process = _group_leader(["sh", "-c", "trap '' TERM; echo ready; sleep 60"], tmp_path)
    assert process.stdout.readline() == b"ready\n"
    record = jobs.stop(tmp_path, timeout=0.5)
    assert (record["exit_code"], record["signal"]) == (-9, "SIGKILL")
    assert process.wait(timeout=5) == -9


def test_launch_refuses_requests_that_cannot_start(tmp_path):
    with pytest.raises(jobs.JobError, match="choose one of"):
        jobs.launch("eval", CONFIG, run_dir=tmp_path / "a")
    with pytest.raises(jobs.JobError, match="no last.pt to resume"):
        jobs.launch("train", run_dir=tmp_path / "a", resume=True)
    with pytest.raises(jobs.JobError, match="no selftrain.yaml to resume"):
        jobs.launch("selftrain", run_dir=tmp_path / "a", resume=True)
    with pytest.raises(jobs.JobError, match="as launch"):
        jobs.launch("train", CONFIG, ["run_dir=elsewhere"], run_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match="lr"):
        jobs.launch("train", CONFIG, ["lr=-1"], run_dir=tmp_path / "a")
    with pytest.raises(jobs.JobError, match="needs a config"):
        jobs.launch("train", run_dir=tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_a_job_gets_the_thread_policys_plan(monkeypatch):
    from ainnoseg import threads

    monkeypatch.setattr(threads, "read_machine", lambda: threads.Machine(cores=2))
    monkeypatch.setattr(threads, "is_interactive", lambda: True)  # launched from the dashboard
    plan = jobs.job_plan()
    assert (plan.threads, plan.nice, plan.passive) == (1, 10, True)
    env = jobs.child_environment(plan)
    assert (env["OMP_NUM_THREADS"], env["OMP_WAIT_POLICY"], env["AINNOSEG_JOB"]) == \
        ("1", "PASSIVE", "interactive")
    assert env["PYTHONPATH"].split(os.pathsep)[0] == jobs.PACKAGE_PARENT
    monkeypatch.setattr(threads, "is_interactive", lambda: False)  # from a terminal, alone
    assert jobs.job_plan().threads == 2
    assert jobs.child_environment(jobs.job_plan())["AINNOSEG_JOB"] == "background"
    fixed = jobs.job_plan(threads=3)
    assert (fixed.threads, fixed.nice) == (3, 10)
    assert jobs.child_environment(fixed, fixed=True)["AINNOSEG_JOB"] == "fixed"


def _nice(pid):
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads Linux's /proc")
def test_a_launched_job_runs_nicer_with_its_planned_environment(tmp_path):
    run_dir = tmp_path / "nice"
    record = _launch(run_dir)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not supervisor.read_record(run_dir).get("child_pid"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        child = supervisor.read_record(run_dir)["child_pid"]
        assert _nice(record["pid"]) >= 10 and _nice(child) >= 10
        environ = dict(entry.split(b"=", 1) for entry in
                       Path(f"/proc/{child}/environ").read_bytes().split(b"\0") if b"=" in entry)
        assert environ[b"OMP_NUM_THREADS"] == b"1" and environ[b"AINNOSEG_JOB"] == b"fixed"
        assert record["nice"] == 10 and record["env"]["OMP_WAIT_POLICY"] == "PASSIVE"
    finally:
        jobs.wait(run_dir, timeout=TIMEOUT)


def test_selftrain_commands_are_argument_lists():
    command = runs.run_command("selftrain", "configs/selftrain_synthetic_quick.yaml",
                               ["rounds=1"], "runs/st")
    assert command[1:] == ["-m", "ainnoseg", "selftrain", "configs/selftrain_synthetic_quick.yaml",
                           "rounds=1", "run_dir=runs/st"]
    assert runs.run_command("selftrain", run_dir="runs/st", resume=True)[-2:] == \
        ["--resume", "runs/st"]


def test_a_run_is_deleted_only_when_it_is_a_run_and_nothing_works_in_it(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("not a run")
    with pytest.raises(jobs.JobError, match="holds no ainnoseg run"):
        jobs.delete_run(notes)
    (notes / "config.yaml").write_text("name: a config of something else\n")
    with pytest.raises(jobs.JobError, match="holds no ainnoseg run"):
        jobs.delete_run(notes)
    assert (notes / "mine.txt").is_file()
    run_dir = tmp_path / "busy"
    first = _launch(run_dir, TINY + ["iterations=1000"])
    with pytest.raises(jobs.JobError, match=f"in use by job pid {first['pid']}"):
        jobs.delete_run(run_dir)
    jobs.stop(run_dir, timeout=10)
    jobs.delete_run(run_dir)
    assert not run_dir.exists()
