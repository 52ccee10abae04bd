import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import ainnoseg
from ainnoseg.checkpoints.files import CheckpointError, load_checkpoint, load_model, save_checkpoint
from ainnoseg.cli import main
from ainnoseg.config import load_config
from ainnoseg.engine.train import learning_rate, train
from ainnoseg.runs.files import read_jsonl
from ainnoseg.runs.layout import RunDirError
from data_trees import camvid_tree, stripes, write_image, write_mask

TINY = {
    "data": "synthetic", "crop_size": [64, 96], "scale": [96, 128], "ratio_range": [0.75, 1.25],
    "batch_size": 4, "workers": 0, "iterations": 4, "lr": 0.01, "eval_every": 2,
    "val_limit": 2, "log_every": 1, "checkpoint_every": 1,
}


def _config_file(tmp_path, name="tiny", **values):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**TINY, **values}))
    return path


def _losses(run_dir):
    return [(r["step"], r["loss"]) for r in read_jsonl(Path(run_dir) / "metrics.jsonl") if "loss" in r]


def _run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "ainnoseg", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=600)


def test_learning_rate_warms_up_then_decays_to_zero():
    config = load_config(None, ["lr=0.1", "iterations=100", "warmup_iterations=10"])
    rates = [learning_rate(config, step) for step in range(100)]
    assert rates[0] == pytest.approx(0.01) and rates[9] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:])) and rates[-1] < 0.01


def test_train_then_eval_then_predict_on_synthetic_scenes(tmp_path, capsys):
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as done:
        main(["train", str(_config_file(tmp_path)), f"run_dir={run_dir}", "model=ainnoseg_w18s"])
    assert done.value.code == 0
    for name in ("config.yaml", "metrics.jsonl", "last.pt", "best.pt"):
        assert (run_dir / name).is_file(), name
    assert list(run_dir.glob("events.out.tfevents.*"))
    records = read_jsonl(run_dir / "metrics.jsonl")
    assert [step for step, _ in _losses(run_dir)] == [1, 2, 3, 4]
    evals = [r for r in records if "val.mean_iou" in r]
    assert [r["step"] for r in evals] == [2, 4]
    state = load_checkpoint(run_dir / "last.pt")
    assert state["step"] == 4 and state["config"]["model"] == "ainnoseg_w18s"
    assert len(state["class_names"]) == 11 and "mean_iou" in state["metrics"]

    frames = camvid_tree(tmp_path / "camvid", height=64, width=96)  # 11 classes, as the scenes
    with pytest.raises(SystemExit) as done:
        main(["eval", str(run_dir / "last.pt"), str(frames), "--json", str(tmp_path / "m.json")])
    assert done.value.code in (0, None)
    assert (tmp_path / "m.json").is_file()
    image = tmp_path / "street.png"
    from PIL import Image

    from ainnoseg.data import SyntheticScenes
    Image.fromarray(SyntheticScenes("test", size=(64, 96))[0][0].permute(1, 2, 0).numpy()).save(image)
    with pytest.raises(SystemExit) as done:
        main(["predict", str(run_dir / "best.pt"), str(image), "--out", str(tmp_path / "out")])
    assert done.value.code in (0, None)
    assert (tmp_path / "out" / "street.png").is_file()


def test_killed_run_resumes_with_the_same_loss_sequence(tmp_path):
    """A run killed with SIGKILL mid-way, then resumed, logs exactly the losses
    of an uninterrupted run (dropout and data order included)."""
    settings = {"iterations": 8, "eval_every": 100, "workers": 1, "model": "ainnoseg_w18s"}
    straight = tmp_path / "straight"
    train(load_config(_config_file(tmp_path, "a", **settings), [f"run_dir={straight}"]))

    killed = tmp_path / "killed"
    config = _config_file(tmp_path, "b", **settings)
    process = subprocess.Popen([sys.executable, "-m", "ainnoseg", "train", str(config),
                                f"run_dir={killed}"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(_losses(killed)) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stopped_at = load_checkpoint(killed / "last.pt")["step"]
    assert 0 < stopped_at < 8
    # with another loader process count: each sample's augmentation is seeded by its place
    result = _run_cli("train", "--resume", str(killed), "workers=0")
    assert result.returncode == 0, result.stderr[-2000:]
    expected, got = _losses(straight), _losses(killed)
    assert [s for s, _ in got] == [s for s, _ in expected] == list(range(1, 9))
    for (_, a), (_, b) in zip(expected, got):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)


def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path):
    """DDP on CPU (gloo) with 2 x 2 images per step equals one process with
    2 micro-batches of 2 (BatchNorm statistics are per process on the CPU,
    where PyTorch's SyncBatchNorm does not run)."""
    settings = {"model": "hrnetv2_w18s", "iterations": 3, "eval_every": 3, "amp": "off",
                "mosaic_ratio": 0.5}
    single_dir, ddp_dir = tmp_path / "single", tmp_path / "ddp"
    config = _config_file(tmp_path, "c", **settings)
    # torchrun runs each process with one thread; so does the reference run, as
    # thread count changes the summation order inside convolutions.
    result = _run_cli("train", str(config), f"run_dir={single_dir}", "accumulate=2",
                      env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
         "-m", "ainnoseg", "train", str(config), f"run_dir={ddp_dir}"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for (s1, a), (s2, b) in zip(_losses(single_dir), _losses(ddp_dir)):
        assert s1 == s2 and a == pytest.approx(b, rel=1e-4)
    one = load_checkpoint(single_dir / "last.pt")["model"]
    two = load_checkpoint(ddp_dir / "last.pt")["model"]
    for name, value in one.items():
        if "running" not in name and "num_batches" not in name:
            torch.testing.assert_close(value, two[name], rtol=1e-4, atol=1e-5, msg=name)


def test_resume_needs_a_checkpoint_and_a_matching_model(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["train", "--resume", str(tmp_path / "nothing")])
    assert done.value.code == 2 and "no checkpoint" in capsys.readouterr().err


def test_checkpoint_for_another_class_count_or_model_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    train(load_config(_config_file(tmp_path, iterations=1, eval_every=1), [f"run_dir={run_dir}"]))
    with pytest.raises(CheckpointError, match="predicts 11 classes .* but 150 are expected"):
        load_model(run_dir / "last.pt", num_classes=150)
    with pytest.raises(CheckpointError, match="holds a ainnoseg_w18s but danet_r18"):
        load_model(run_dir / "last.pt", model_name="danet_r18")


def test_a_nan_loss_stops_with_an_explanation(tmp_path):
    with pytest.raises(FloatingPointError, match="non-finite|loss became .* lower lr"):
        train(load_config(_config_file(tmp_path, lr=1e12, iterations=6, eval_every=100),
                          [f"run_dir={tmp_path / 'run'}", "amp=off", "model=hrnetv2_w18s"]))


def test_training_can_start_from_another_runs_weights(tmp_path):
    first = tmp_path / "first"
    train(load_config(_config_file(tmp_path, iterations=1, eval_every=1),
                      [f"run_dir={first}", "model=hrnetv2_w18s"]))
    teacher = load_checkpoint(first / "last.pt")["model"]
    second = tmp_path / "second"
    steps = []
    train(load_config(_config_file(tmp_path, iterations=1, eval_every=1, lr=1e-12),
                      [f"run_dir={second}", "model=hrnetv2_w18s",
                       f"init_checkpoint={first / 'last.pt'}"]),
          on_step=lambda step, total: steps.append((step, total)))
    student = load_checkpoint(second / "last.pt")["model"]
    assert steps == [(1, 1)]
    weight = "backbone.body.conv1.weight"
    torch.testing.assert_close(student[weight], teacher[weight])
    with pytest.raises(CheckpointError, match="holds a hrnetv2_w18s but ainnoseg_w18s"):
        train(load_config(_config_file(tmp_path, iterations=1),
                          [f"run_dir={tmp_path / 'third'}", f"init_checkpoint={first / 'last.pt'}"]))


def test_resume_refuses_changes_that_would_alter_the_run(tmp_path, capsys):
    run_dir = tmp_path / "run"
    train(load_config(_config_file(tmp_path, "d", iterations=1, eval_every=100, workers=0),
                      [f"run_dir={run_dir}"]))
    with pytest.raises(SystemExit) as done:
        main(["train", "--resume", str(run_dir), "workers=0", "lr=0.5"])
    error = capsys.readouterr().err
    assert done.value.code == 2 and "['lr'] would change the run" in error and "workers" in error
    with pytest.raises(SystemExit) as done:
        main(["train", "--resume", str(run_dir), "configs/synthetic_quick.yaml"])
    assert done.value.code == 2 and "drop configs/synthetic_quick.yaml" in capsys.readouterr().err


# A run directory is never overwritten, and every run ends with what it reached


def _file_bytes(folder):
    return {path.relative_to(folder): path.read_bytes()
            for path in sorted(Path(folder).rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 2-step hrnetv2_w18s run made by `ainnoseg train`, and what it printed."""
    root = tmp_path_factory.mktemp("finished")
    config = _config_file(root, "tiny", model="hrnetv2_w18s", iterations=2, eval_every=2,
                          run_dir=str(root / "run"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.raises(SystemExit) as done:
        main(["train", str(config)])
    assert done.value.code == 0
    return root / "run", config, printed.getvalue()


def test_training_twice_into_one_run_directory_leaves_the_first_run_untouched(
        finished_run, capsys):
    run_dir, config, _ = finished_run
    before = _file_bytes(run_dir)
    assert {"config.yaml", "metrics.jsonl", "last.pt", "best.pt"} <= {str(p) for p in before}
    with pytest.raises(SystemExit) as done:
        main(["train", str(config)])
    error = capsys.readouterr().err
    assert done.value.code == 2
    assert f"ainnoseg train --resume {run_dir}" in error and "run_dir=" in error
    assert _file_bytes(run_dir) == before  # byte for byte, and no file added


def test_a_run_directory_with_a_best_checkpoint_but_no_last_one_is_refused_too(tmp_path):
    # (a run killed before its first checkpoint, config.yaml and metrics.jsonl
    # only, starts afresh instead: see test_run_dir_safety.py)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n')
    (run_dir / "best.pt").write_bytes(b"weights")
    with pytest.raises(RunDirError, match="no checkpoint to resume .*run_dir="):
        train(load_config(_config_file(tmp_path), [f"run_dir={run_dir}"]))
    assert (run_dir / "metrics.jsonl").read_text() == '{"step": 1, "loss": 2.0}\n'


def test_training_ends_with_its_best_score_and_a_finished_run_says_so(finished_run, capsys):
    run_dir, _, printed = finished_run
    best = max((r for r in read_jsonl(run_dir / "metrics.jsonl") if "val.mean_iou" in r),
               key=lambda r: r["val.mean_iou"])
    assert f"best val mIoU {100 * best['val.mean_iou']:.2f} %" in printed
    assert "Boundary IoU" in printed and f"at step {best['step']}" in printed
    assert str(run_dir / "best.pt") in printed
    before = _file_bytes(run_dir)
    with pytest.raises(SystemExit) as done:
        main(["train", "--resume", str(run_dir)])
    assert done.value.code == 0
    assert f"{run_dir} is finished: 2 of 2 iterations" in capsys.readouterr().out
    assert _file_bytes(run_dir) == before


def test_checkpoints_keep_the_gpus_generator_and_resume_restores_it(monkeypatch, tmp_path):
    """Dropout on a GPU draws from its own generator: a resumed GPU run must
    continue it (faked here, on a machine without one)."""
    from ainnoseg.engine import checkpointing as engine

    gpu, gpu_state, restored = torch.device("cuda", 0), torch.arange(16, dtype=torch.uint8), []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: gpu_state.clone())
    monkeypatch.setattr(torch.cuda, "set_rng_state",
                        lambda state, device: restored.append((state, device)))
    save_checkpoint({"model": {}, "config": {"model": "hrnetv2_w18s"},
                     **engine.rng_states(gpu)}, tmp_path / "last.pt")
    state = load_checkpoint(tmp_path / "last.pt")
    assert torch.equal(state["cuda_rng"], gpu_state)
    engine.restore_rng_states(state, gpu)
    assert len(restored) == 1 and torch.equal(restored[0][0], gpu_state)
    assert restored[0][1] == gpu
    assert "cuda_rng" not in engine.rng_states(torch.device("cpu"))
    engine.restore_rng_states(state, torch.device("cpu"))  # resumed on a CPU: its own only
    assert len(restored) == 1


def test_fine_tuning_to_another_class_count_starts_only_the_classifier_anew(
        finished_run, tmp_path, capsys):
    run_dir, _, _ = finished_run
    data = tmp_path / "pets"
    (data / "classes.txt").parent.mkdir()
    (data / "classes.txt").write_text("background\ncat\ndog\n")
    for split in ("train", "val"):
        for index in range(2):
            write_image(data / "images" / split / f"{index}.png", 64, 96, seed=index)
            write_mask(data / "masks" / split / f"{index}.png", stripes(64, 96, values=(0, 1, 2)))
    new_run = tmp_path / "pets_run"
    with pytest.raises(SystemExit) as done:
        main(["train", str(_config_file(tmp_path, model="hrnetv2_w18s", iterations=1,
                                        eval_every=1, lr=1e-12, batch_size=2)), f"data={data}",
              f"run_dir={new_run}", f"init_checkpoint={run_dir / 'last.pt'}"])
    out, error = capsys.readouterr()
    assert done.value.code == 0, error
    assert "predicts 11 classes, this data has 3" in out and "start from random" in out
    teacher = load_checkpoint(run_dir / "last.pt")["model"]
    student = load_checkpoint(new_run / "last.pt")
    reinitialised = [k for k in teacher if student["model"][k].shape != teacher[k].shape]
    assert reinitialised and all(name in out for name in reinitialised)
    assert student["class_names"] == ["background", "cat", "dog"]
    weight = "backbone.body.conv1.weight"
    torch.testing.assert_close(student["model"][weight], teacher[weight])


def test_a_folder_without_split_folders_trains_with_a_loud_warning(tmp_path, capsys):
    from ainnoseg.engine.train import build_datasets

    data = tmp_path / "flat"
    (data / "classes.txt").parent.mkdir()
    (data / "classes.txt").write_text("background\ncat\n")
    for index in range(3):
        write_image(data / "images" / f"{index}.png", 64, 96, seed=index)
        write_mask(data / "masks" / f"{index}.png", stripes(64, 96, values=(0, 1)))
    build_datasets(load_config(None, [f"data={data}"]))
    warning = capsys.readouterr().err
    assert warning.startswith("warning:")
    assert "training and validation both use all its 3" in warning
    assert "images/val/" in warning and "masks/val/" in warning


def test_weights_of_other_architecture_options_are_refused_with_the_options_to_set(tmp_path):
    """An AinnoSeg saved with OCR on the DA output alone (the releases before
    da+backbone became the default) cannot start a default run; the error
    names the option that makes it fit."""
    config = load_config(_config_file(tmp_path, iterations=1), ["ocr_pixels=da"])
    model = ainnoseg.build_model("ainnoseg_w18s", num_classes=4, ocr_pixels="da")
    checkpoint = tmp_path / "da.pt"
    save_checkpoint({"config": config.to_dict(), "model": model.state_dict(),
                     "class_names": ["a", "b", "c", "d"]}, checkpoint)
    with pytest.raises(CheckpointError, match=r"\(ocr_pixels\): start from it with ocr_pixels=da"):
        train(load_config(_config_file(tmp_path, iterations=1),
                          [f"run_dir={tmp_path / 'run'}", f"init_checkpoint={checkpoint}"]))
