"""The thread policy's decisions: which threads, environment and priority a
launched job, an app's request and a terminal command get (not timings)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ainnoseg import threads
from ainnoseg.threads import Machine


def test_a_job_launched_from_an_app_on_two_cores_leaves_it_one_core():
    plan = threads.for_job(Machine(cores=2), interactive=True)
    assert (plan.threads, plan.interop, plan.nice, plan.passive) == (1, 1, 10, True)
    assert plan.environment() == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                                  "OMP_WAIT_POLICY": "PASSIVE"}


def test_a_job_alone_on_the_machine_takes_every_core():
    assert threads.for_job(Machine(cores=2)).threads == 2
    assert threads.for_job(Machine(cores=16)).threads == 16


def test_a_running_app_found_on_the_machine_keeps_a_core_in_four():
    assert threads.for_job(Machine(cores=2, apps=1)).threads == 1
    assert threads.for_job(Machine(cores=16, apps=2)).threads == 12
    assert threads.for_job(Machine(cores=1, apps=1), interactive=True).threads == 1


def test_a_command_a_user_waits_for_keeps_a_core_from_the_jobs():
    """`ainnoseg eval` typed beside a two-thread job on two cores would make
    three threads on two cores, and the job's starved thread stalls its step."""
    assert threads.for_job(Machine(cores=2, waiting=1)).threads == 1
    assert threads.for_job(Machine(cores=2, jobs=1, waiting=2)).threads == 1
    assert threads.for_job(Machine(cores=16, waiting=1)).threads == 12
    job = threads.for_job(Machine(cores=2, waiting=1))
    command = threads.for_foreground(Machine(cores=2, jobs=1))
    assert job.threads + command.threads == 2


def test_training_processes_divide_the_cores_among_them():
    assert threads.for_job(Machine(cores=2, jobs=1)).threads == 1
    assert threads.for_training(Machine(cores=2, jobs=1)).threads == 1
    assert threads.for_job(Machine(cores=8, jobs=1), interactive=True).threads == 3
    assert threads.for_job(Machine(cores=2, jobs=3)).threads == 1
    assert threads.for_training(Machine(cores=2, jobs=1)).nice == 0


def test_the_foreground_takes_every_core_or_what_training_leaves():
    assert threads.for_foreground(Machine(cores=2)).threads == 2
    assert threads.for_foreground(Machine(cores=2, jobs=1)).threads == 1
    assert threads.for_foreground(Machine(cores=2, jobs=2)).threads == 1
    assert threads.for_foreground(Machine(cores=16, jobs=1)).threads == 4
    plan = threads.for_foreground(Machine(cores=2, jobs=1))
    assert (plan.nice, plan.passive) == (0, False)
    assert "OMP_WAIT_POLICY" not in plan.environment()


def test_an_app_and_a_job_on_two_cores_never_ask_for_more_than_two():
    for interactive in (True, False):
        job = threads.for_job(Machine(cores=2, apps=1), interactive=interactive)
        app = threads.for_foreground(Machine(cores=2, jobs=1))
        assert job.threads + app.threads == 2


@pytest.mark.parametrize("argv, training", [
    (["python", "-m", "ainnoseg", "train", "configs/x.yaml"], True),
    (["/x/.venv/bin/python", "/x/.venv/bin/ainnoseg", "selftrain", "--resume", "r"], True),
    (["/usr/bin/python3", "/x/bin/torchrun", "--nproc_per_node=2", "-m", "ainnoseg", "train",
      "c.yaml"], True),
    (["timeout", "600", ".venv/bin/ainnoseg", "train", "c.yaml"], False),
    (["python", "-I", "/x/ainnoseg/runs/supervisor.py", "runs/a", "--", "python", "-m",
      "ainnoseg", "train", "c.yaml"], False),
    (["python", "-m", "ainnoseg", "predict", "ck.pt", "a.png"], False),
    (["python", "train.py"], False),
])
def test_training_processes_are_told_from_their_command_line(argv, training):
    assert threads.is_training_command(argv) is training


@pytest.mark.parametrize("argv, command", [
    (["python", "-m", "ainnoseg", "eval", "camvid/hrnetv2_w18s", "data"], "eval"),
    (["/x/.venv/bin/python", "/x/.venv/bin/ainnoseg", "publish", "runs/a", "--out", "o"],
     "publish"),
    (["python", "-m", "ainnoseg", "train", "c.yaml"], "train"),
    (["python", "-m", "ainnoseg"], None),
    (["timeout", "600", ".venv/bin/ainnoseg", "eval", "c.pt", "d"], None),
    (["python", "-I", "/x/ainnoseg/runs/supervisor.py", "runs/a", "--", "python", "-m",
      "ainnoseg", "train", "c.yaml"], None),
    (["python", "-m", "streamlit", "run", "app/dashboard.py"], None),
])
def test_the_ainnoseg_command_of_a_process(argv, command):
    assert threads.ainnoseg_command(argv) == command


def test_apps_are_told_from_their_command_line():
    assert threads.is_app_command(["python", "-m", "streamlit", "run", "app/dashboard.py"])
    assert threads.is_app_command(["/usr/bin/python3", "/home/u/ainnoseg/app/demo.py"])
    assert not threads.is_app_command(["python", "-m", "ainnoseg", "train", "c.yaml"])


SLEEPER = "import os, sys, time\nif sys.argv[-1] == 'fork':\n    os.fork()\ntime.sleep(60)"


def _wait_for(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads Linux's /proc")
def test_read_machine_counts_a_running_job_with_its_threads_but_not_its_workers():
    """A process that runs `-m ainnoseg train` and has forked a copy of itself
    (as a DataLoader worker is) counts as one job, one that runs `-m ainnoseg
    eval` and its copy as one waited-for command; an app's process counts as
    an app; others count as nothing."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    job = subprocess.Popen([sys.executable, "-c", SLEEPER, "-m", "ainnoseg", "train", "fork"],
                           env=env)
    command = subprocess.Popen([sys.executable, "-c", SLEEPER, "-m", "ainnoseg", "eval",
                                "fork"], env=env)
    app = subprocess.Popen([sys.executable, "-c", SLEEPER, "app/dashboard.py"])
    other = subprocess.Popen([sys.executable, "-c", SLEEPER])
    forked = (job, command)
    try:
        assert _wait_for(lambda: all(_children(p.pid) for p in forked))
        pids = [pid for p in forked for pid in (p.pid, *_children(p.pid))] + [app.pid, other.pid]
        assert len(pids) == 6
        assert threads.read_machine(pids) == Machine(threads.available_cores(), jobs=1, apps=1,
                                                     waiting=1)
    finally:
        for pid in [pid for p in forked for pid in _children(p.pid)]:
            os.kill(pid, 9)
        for process in (job, command, app, other):
            process.kill()
            process.wait()


def _children(pid):
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_foreground_uses_what_the_jobs_leave_and_restores_the_count(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_recent_machine", lambda: Machine(cores=2, jobs=1))
    torch.set_num_threads(2)
    try:
        with threads.foreground() as used:
            assert used == 1 and torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(2)


def test_an_explicit_thread_count_wins_in_the_foreground(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(threads, "_recent_machine", lambda: Machine(cores=2))
    before = torch.get_num_threads()
    with threads.foreground() as used:
        assert used == 1
    assert torch.get_num_threads() == before


def test_a_launched_job_keeps_its_launchers_threads(monkeypatch):
    monkeypatch.setenv("AINNOSEG_JOB", "1")
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "read_machine", lambda *a: pytest.fail("a job does not decide again"))
    assert threads.apply_for_command("train") == before


def test_a_terminal_command_takes_what_the_jobs_leave(monkeypatch):
    monkeypatch.delenv("AINNOSEG_JOB", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "read_machine", lambda: Machine(cores=2, jobs=1))
    before = torch.get_num_threads()
    try:
        assert threads.apply_for_command("predict") == 1
        monkeypatch.setattr(threads, "read_machine", lambda: Machine(cores=2))
        assert threads.apply_for_command("eval") == 2
        assert threads.apply_for_command("models") == 2  # no model work: left as it is
    finally:
        torch.set_num_threads(before)


def test_a_training_process_gives_cores_back_when_a_second_job_starts(monkeypatch):
    monkeypatch.setenv("AINNOSEG_JOB", "background")
    facts = {"machine": Machine(cores=2)}
    monkeypatch.setattr(threads, "read_machine", lambda: facts["machine"])
    before = torch.get_num_threads()
    try:
        planner = threads.TrainingThreads()
        planner.next_check = 0
        assert planner.update() == 2
        facts["machine"] = Machine(cores=2, jobs=1)
        assert planner.update() == 2  # not before REPLAN_S has passed
        planner.next_check = 0
        assert planner.update() == 1 and torch.get_num_threads() == 1
        facts["machine"] = Machine(cores=2)
        planner.next_check = 0
        assert planner.update() == 2 and torch.get_num_threads() == 2
        facts["machine"] = Machine(cores=2, waiting=1)  # `ainnoseg eval` in a terminal
        planner.next_check = 0
        assert planner.update() == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_job_launched_from_an_app_keeps_its_core_when_it_replans(monkeypatch):
    monkeypatch.setenv("AINNOSEG_JOB", "interactive")
    monkeypatch.setattr(threads, "read_machine", lambda: Machine(cores=2))
    before = torch.get_num_threads()
    try:
        planner = threads.TrainingThreads()
        planner.next_check = 0
        assert planner.update() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("job, explicit", [("fixed", None), ("", "1"), ("", None)])
def test_fixed_jobs_user_set_threads_and_library_calls_are_never_replanned(
        monkeypatch, job, explicit):
    """A job launched with fixed threads, `ainnoseg train` typed in a terminal
    (with OMP_NUM_THREADS or without) and `train()` called from a notebook or
    a test keep their threads while they train."""
    monkeypatch.setenv("AINNOSEG_JOB", job)
    before = torch.get_num_threads()
    try:
        if explicit:
            monkeypatch.setenv("OMP_NUM_THREADS", explicit)
        if not job:
            threads.apply_for_command("train")
        monkeypatch.setattr(threads, "read_machine", lambda: pytest.fail("not planned"))
        planner = threads.TrainingThreads()
        planner.next_check = 0
        planner.update()
    finally:
        torch.set_num_threads(before)
