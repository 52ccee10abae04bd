"""Self-training: pseudo-labels, their statistics, the rounds end to end, and
resuming after a kill in every phase. Tiny budgets on the synthetic scenes."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ainnoseg.checkpoints.files import load_checkpoint, load_model
from ainnoseg.cli import main
from ainnoseg.config import ConfigError, from_dict, load_saved_config, save_config
from ainnoseg.data import SyntheticScenes, eval_transforms, open_pool
from ainnoseg.engine import pseudo_label
from ainnoseg.engine.pseudo_label import (label_batch, label_pool, pseudo_label_stats,
                                          pseudo_labels, write_png)
from ainnoseg.engine.selftrain import MixedSamples, resume_selftrain, selftrain
from ainnoseg.engine.selftrain_summary import round_record, round_wall_time_hours
from ainnoseg.engine.train import train
from ainnoseg.inference.fast import optimize_for_inference
from ainnoseg.runs.control import control_comparison
from ainnoseg.runs.files import read_jsonl
from ainnoseg.runs.layout import RunDirError
from data_trees import camvid_tree
from killed import Killed

TINY = {
    "data": "synthetic", "crop_size": [64, 96], "scale": [96, 128], "ratio_range": [0.75, 1.25],
    "batch_size": 4, "workers": 0, "iterations": 3, "eval_every": 3, "val_limit": 1,
    "log_every": 1, "checkpoint_every": 1, "model": "hrnetv2_w18s",
    "unlabeled": "synthetic", "unlabeled_split": "test", "unlabeled_limit": 4,
    "pseudo_scales": [1.0], "pseudo_flip": False, "pseudo_batch": 2,
}
PHASES = ["teacher", "eval", "pseudo-label", "student", "fine-tune", "eval"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _config(run_dir, **values):
    return from_dict({**TINY, "run_dir": str(run_dir), **values})


def _losses(run_dir):
    return [(r["step"], r["loss"]) for r in read_jsonl(Path(run_dir) / "metrics.jsonl")
            if "loss" in r]


def main_exit(argv):
    """The exit status of `ainnoseg ARGV`."""
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code


def _phase_sequence(records):
    """(round, phase) in the order they appear, repeats collapsed."""
    sequence = []
    for record in records:
        key = (record["round"], record["phase"])
        if not sequence or sequence[-1] != key:
            sequence.append(key)
    return sequence


@pytest.fixture(scope="module")
def two_rounds(tmp_path_factory):
    """An uninterrupted 2-round run, students initialised from their teacher."""
    run_dir = tmp_path_factory.mktemp("selftrain") / "run"
    config = _config(run_dir, rounds=2, student_init="teacher")
    summary = selftrain(config)
    return run_dir, config, summary


class FixedLogits(nn.Module):
    """A fake segmentor whose logits are a fixed function of the pixel colour."""

    def __init__(self, num_classes=3):
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)
        with torch.no_grad():
            weights = torch.linspace(-2, 2, num_classes * 3)
            self.conv.weight.copy_(weights.view(num_classes, 3, 1, 1))
            self.conv.bias.zero_()

    def forward(self, images):
        return {"out": self.conv(images)}


# Pseudo-labels and the confidence threshold


def test_threshold_keeps_everything_at_zero_nothing_above_one_and_ignores_unsure_pixels():
    probabilities = torch.rand(2, 4, 5, 6).softmax(1)
    assert (pseudo_labels(probabilities, 0.0) != 255).all()
    assert (pseudo_labels(probabilities, 1.01) == 255).all()
    confidence, argmax = probabilities.max(1)
    threshold = confidence.median().item()
    labels = pseudo_labels(probabilities, threshold)
    assert labels.dtype == torch.uint8
    assert torch.equal(labels == 255, confidence < threshold)
    assert torch.equal(labels[confidence >= threshold], argmax[confidence >= threshold].byte())


def test_label_batch_thresholds_the_models_softmax():
    model = FixedLogits().eval()
    images = torch.randn(2, 3, 8, 10)
    probabilities = model(images)["out"].softmax(1)
    confidence, argmax = probabilities.max(1)
    threshold = confidence.flatten().quantile(0.3).item()
    labels = label_batch(model, images, threshold, amp="off")
    expected = torch.where(confidence < threshold, 255, argmax).byte()
    assert torch.equal(labels, expected)
    assert 0 < (labels == 255).float().mean() < 1
    several = label_batch(model, images, 0.0, scales=(0.75, 1.0, 1.5), flip=True)
    assert several.shape == (2, 8, 10) and (several != 255).all()


def test_label_pool_batches_images_of_one_size_and_skips_labelled_ones(tmp_path, monkeypatch):
    folder = tmp_path / "pool"
    folder.mkdir()
    sizes = [(8, 10), (8, 10), (8, 10), (6, 12), (8, 10)]
    for index, (height, width) in enumerate(sizes):
        pixels = np.random.default_rng(index).integers(0, 256, (height, width, 3), np.uint8)
        Image.fromarray(pixels).save(folder / f"img{index}.png")
    pool = open_pool(folder)
    assert pool.stems == [f"img{i}" for i in range(5)] and not pool.labelled
    model, out = FixedLogits().eval(), tmp_path / "labels"
    batches = []
    monkeypatch.setattr(pseudo_label, "label_batch", lambda m, images, *rest: batches.append(
        len(images)) or label_batch(m, images, *rest))
    # float32 on both sides: under bf16 a batch of three and a single image
    # may take convolution kernels that round differently, on some processors.
    assert label_pool(model, pool, out, amp="off", batch_size=3) == 5
    monkeypatch.undo()
    assert batches == [3, 1, 1]  # the 12-pixel-wide image is never stacked with the others
    for index, size in enumerate(sizes):
        labels = np.asarray(Image.open(out / f"img{index}.png"))
        image = eval_transforms()(pool.image(index)).unsqueeze(0)
        assert labels.shape == size
        assert np.array_equal(labels, label_batch(model, image, amp="off")[0].numpy())
    (out / "img3.png").unlink()
    calls = []
    assert label_pool(model, pool, out, amp="off", batch_size=3,
                      on_image=lambda *a: calls.append(a)) == 1
    assert calls == [(1, 1)] and (out / "img3.png").is_file()


def test_a_png_write_killed_midway_leaves_no_file(tmp_path, monkeypatch):
    def broken_save(self, handle, format=None):
        handle.write(b"\x89PNG half")
        raise Killed()

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(Killed):
        write_png(np.zeros((4, 4), np.uint8), tmp_path / "a.png")
    assert list(tmp_path.iterdir()) == []


# Statistics


def _write_labels(folder, maps):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, labels in maps.items():
        write_png(np.asarray(labels, np.uint8), folder / f"{stem}.png")


def test_statistics_count_kept_pixels_classes_agreement_and_miou(tmp_path):
    names = ["sky", "road", "car"]
    maps = {"a": [[0, 0, 1], [1, 255, 2]], "b": [[2, 2, 255], [255, 255, 0]]}
    _write_labels(tmp_path / "r1", maps)
    _write_labels(tmp_path / "r2", maps)
    truth = [torch.tensor(m, dtype=torch.uint8) for m in maps.values()]
    stats = pseudo_label_stats(tmp_path / "r2", ["a", "b"], names, previous_dir=tmp_path / "r1",
                               ground_truth=lambda index: truth[index])
    assert stats["images"] == 2 and stats["pixels"] == 12 and stats["kept_pixels"] == 8
    assert stats["kept_share"] == pytest.approx(8 / 12)
    assert stats["class_pixels"] == {"sky": 3, "road": 2, "car": 3}
    assert sum(stats["class_pixels"].values()) == stats["kept_pixels"]
    assert sum(stats["class_share"].values()) == pytest.approx(1.0)
    assert stats["agreement"] == 1.0 and stats["agreement_pixels"] == 8
    assert stats["mean_iou"] == 1.0 and stats["pixel_accuracy"] == 1.0

    _write_labels(tmp_path / "r3", {"a": [[0, 0, 1], [1, 255, 1]], "b": [[2, 0, 0], [255, 255, 0]]})
    changed = pseudo_label_stats(tmp_path / "r3", ["a", "b"], names, previous_dir=tmp_path / "r2",
                                 ground_truth=lambda index: truth[index])
    # Kept in both rounds: 5 in a (1 changed), 3 in b (1 changed; one pixel is new).
    assert changed["agreement"] == pytest.approx(6 / 8) and changed["agreement_pixels"] == 8
    # Kept and labelled in the truth: 5 in a (1 wrong), 3 in b (1 wrong).
    assert changed["pixel_accuracy"] == pytest.approx(6 / 8) and changed["mean_iou"] < 1
    alone = pseudo_label_stats(tmp_path / "r1", ["a", "b"], names)
    assert alone["agreement"] is None and alone["mean_iou"] is None


def test_mixed_samples_hold_the_pseudo_share():
    pseudo = [("p", i) for i in range(6)]
    labelled = SyntheticScenes("train", size=(64, 64), length=3)
    mixed = MixedSamples(pseudo, labelled, pseudo_ratio=0.25)
    assert len(mixed) == 24 and mixed[5] == ("p", 5)
    torch.manual_seed(1)
    first = mixed[10]
    torch.manual_seed(1)
    assert torch.equal(mixed[10][1], first[1]) and mixed.num_classes == 11


def test_config_refuses_bad_selftraining_values():
    for values, message in (({"threshold": 1.5}, "threshold"),
                            ({"pseudo_ratio": 0}, "pseudo_ratio"),
                            ({"student_init": "random"}, "student_init"),
                            ({"student_data": "pool"}, "student_data"),
                            ({"pseudo_scales": [0]}, "pseudo_scales"), ({"rounds": -1}, "rounds")):
        with pytest.raises(ConfigError, match=message):
            from_dict(values)


# The rounds end to end


def test_two_rounds_write_a_readable_run_directory(two_rounds):
    run_dir, config, summary = two_rounds
    assert (run_dir / "selftrain.yaml").is_file()
    for name in ("last.pt", "best.pt", "metrics.jsonl", "metrics.json"):
        assert (run_dir / "round_0" / name).is_file(), name
    for round_index in (1, 2):
        round_dir = run_dir / f"round_{round_index}"
        assert sorted(p.name for p in (round_dir / "pseudo").iterdir()) == [
            f"{i:05d}.png" for i in range(4)]
        for name in ("pseudo_stats.json", "metrics.json", "teacher.json", "student/last.pt",
                     "student/metrics.jsonl", "finetune/last.pt", "finetune/best.pt"):
            assert (round_dir / name).is_file(), name
        assert [s for s, _ in _losses(round_dir / "student")] == [1, 2, 3]
        stats = json.loads((round_dir / "pseudo_stats.json").read_text())
        assert stats["images"] == 4 and stats["kept_share"] == 1.0
        assert 0 <= stats["mean_iou"] <= 1  # the synthetic test split has labels
        assert (stats["agreement"] is None) == (round_index == 1)
    records = read_jsonl(run_dir / "progress.jsonl")
    assert _phase_sequence(records) == [(0, "teacher"), (0, "eval")] + [
        (r, p) for r in (1, 2) for p in PHASES[2:]]
    assert set(records[0]) == {"time", "round", "phase", "step", "total", "eta_s"}
    assert [r["round"] for r in summary["rounds"]] == [0, 1, 2]
    assert summary == json.loads((run_dir / "summary.json").read_text())
    assert summary["rounds"][2]["pseudo"]["agreement"] is not None
    assert summary["rounds"][0]["labelled_by"] is None
    assert summary["rounds"][2]["checkpoint"] == str(run_dir / "round_2" / "finetune" / "last.pt")


def test_round_two_is_labelled_by_round_ones_fine_tuned_student(two_rounds, tmp_path):
    run_dir, config, _ = two_rounds
    teacher = run_dir / "round_1" / "finetune" / "last.pt"
    labelled_by = json.loads((run_dir / "round_2" / "teacher.json").read_text())["checkpoint"]
    assert labelled_by == str(teacher)
    student = load_checkpoint(run_dir / "round_2" / "student" / "last.pt")["config"]
    assert student["init_checkpoint"] == str(teacher)
    # Labelled again as the round labels its pool (the same fast copy, precision
    # and batches), the pool gives the same PNGs exactly, on any processor.
    model, _ = load_model(teacher)
    fast = optimize_for_inference(model, config.amp, config.channels_last)
    pool = open_pool(config.unlabeled or config.data, config.unlabeled_split,
                     config.unlabeled_limit)
    again = tmp_path / "again"
    assert label_pool(fast, pool, again, config.threshold, config.pseudo_scales,
                      config.pseudo_flip, config.amp, config.pseudo_batch, config.workers) == 4
    for stem in pool.stems:
        written, expected = (np.asarray(Image.open(folder / f"{stem}.png"))
                             for folder in (run_dir / "round_2" / "pseudo", again))
        assert np.array_equal(written, expected), stem
    metrics = json.loads((run_dir / "round_2" / "metrics.json").read_text())
    assert metrics["checkpoint"] == str(run_dir / "round_2" / "finetune" / "last.pt")


def test_a_finished_run_is_not_started_over(two_rounds):
    run_dir, config, _ = two_rounds
    with pytest.raises(RunDirError, match="--resume"):
        selftrain(config)


def test_the_control_trains_each_student_on_the_labelled_set_with_the_same_schedule(
        tmp_path):
    run_dir = tmp_path / "control"
    config = _config(run_dir, rounds=1, student_init="teacher", student_data="labelled",
                     student_iterations=2, finetune_iterations=1,
                     unlabeled=str(tmp_path / "no pool here"))  # the control reads no pool
    summary = selftrain(config)
    records = read_jsonl(run_dir / "progress.jsonl")
    assert _phase_sequence(records) == [(0, "teacher"), (0, "eval"), (1, "student"),
                                        (1, "fine-tune"), (1, "eval")]
    round_dir = run_dir / "round_1"
    assert not (round_dir / "pseudo").exists() and not (round_dir / "pseudo_stats.json").exists()
    assert summary["rounds"][1]["pseudo"] is None and summary["rounds"][1]["val"] is not None
    # The student is the teacher trained on, on the labelled set: a plain run
    # from the teacher with the student's settings takes the same steps.
    teacher = run_dir / "round_0" / "last.pt"
    alone = tmp_path / "alone"
    train(dataclasses.replace(config, run_dir=str(alone), iterations=2,
                              init_checkpoint=str(teacher)))
    assert _losses(round_dir / "student") == _losses(alone)
    with pytest.raises(ConfigError, match="control run .*`ainnoseg publish .*finetune`"):
        round_record(run_dir, 1)


def test_a_run_beside_its_control_pairs_every_rounds_scores_and_refuses_other_runs(
        two_rounds, tmp_path, capsys):
    run_dir, config, _ = two_rounds
    control_dir = tmp_path / "control"
    selftrain(dataclasses.replace(config, run_dir=str(control_dir), student_data="labelled"))
    capsys.readouterr()
    out = tmp_path / "record" / "comparison.json"
    assert main_exit(["selftrain-compare", str(run_dir), str(control_dir), "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [row["round"] for row in record["rounds"]] == [0, 1, 2]
    for row in record["rounds"]:
        for side, directory in (("selftrain", run_dir), ("control", control_dir)):
            metrics = json.loads((directory / f"round_{row['round']}" / "metrics.json").read_text())
            assert row[side]["mean_iou"] == metrics["mean_iou"]
            assert row[side]["class_iou"] == metrics["class_iou"]
    last = record["rounds"][2]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("round  val mIoU %  control %  difference")
    difference = 100 * (last["selftrain"]["mean_iou"] - last["control"]["mean_iou"])
    assert printed[3].split()[:4] == ["2", f"{100 * last['selftrain']['mean_iou']:.2f}",
                                      f"{100 * last['control']['mean_iou']:.2f}",
                                      f"{difference:+.2f}"]
    assert printed[-1] == f"wrote {out}"

    with pytest.raises(ConfigError, match="give the self-training run first"):
        control_comparison(control_dir, run_dir)
    with pytest.raises(ConfigError, match="student_data=labelled"):
        control_comparison(run_dir, run_dir)
    other = tmp_path / "other"
    shutil.copytree(control_dir, other)
    save_config(dataclasses.replace(load_saved_config(other / "selftrain.yaml"), rounds=3),
                other / "selftrain.yaml")
    with pytest.raises(ConfigError,
                       match=r"not .*budget-matched control: their rounds \(2 and 3\)"):
        control_comparison(run_dir, other)
    unfinished = tmp_path / "unfinished"
    shutil.copytree(control_dir, unfinished)
    (unfinished / "round_2" / "metrics.json").unlink()
    assert main_exit(["selftrain-compare", str(run_dir), str(unfinished)]) == 2
    assert "round 2 of" in capsys.readouterr().err
    partial = tmp_path / "partial.json"
    assert main_exit(["selftrain-compare", str(run_dir), str(unfinished), "--partial",
                      "--out", str(partial)]) == 0
    assert [row["round"] for row in json.loads(partial.read_text())["rounds"]] == [0, 1]


# Publishing a round


def test_a_published_round_is_its_fine_tuned_student_with_the_rounds_record(two_rounds, tmp_path):
    run_dir, _, _ = two_rounds
    frames = camvid_tree(tmp_path / "camvid", height=64, width=96)  # CamVid's 11 classes, 2 frames
    with pytest.raises(SystemExit) as done:
        main(["publish", str(run_dir), "--round", "2", "--out", str(tmp_path), "--name", "r2",
              "--ms-scales", "1.0", "--data", str(frames)])
    assert done.value.code == 0
    entry = json.loads((tmp_path / "manifest.json").read_text())["r2"]
    record = entry["selftrain"]
    assert record["round"] == 2 and record["student_init"] == "teacher"
    assert record["labelled_by"] == str(run_dir / "round_1" / "finetune" / "last.pt")
    assert record["pseudo"]["images"] == 4 and record["pseudo"]["agreement"] is not None
    assert record["pseudo_scales"] == [1.0] and record["threshold"] == 0.0
    assert record["student_iterations"] == record["finetune_iterations"] == 3
    assert entry["iterations"] == entry["best_step"] == 6
    assert entry["command"].startswith("ainnoseg selftrain")
    published = load_checkpoint(tmp_path / "r2.pt")["model"]
    source = load_checkpoint(run_dir / "round_2" / "finetune" / "last.pt")["model"]
    for key, value in source.items():
        assert torch.equal(published[key], value.half() if value.is_floating_point() else value)


@pytest.mark.parametrize("arguments, message", [
    (["--round", "0"], "round 0 is the teacher"),
    (["--round", "3"], "rounds 1 to 2"),
    ([], "say which round"),
])
def test_publishing_a_round_that_holds_no_student_is_refused(two_rounds, tmp_path, capsys,
                                                           arguments, message):
    with pytest.raises(SystemExit) as done:
        main(["publish", str(two_rounds[0]), "--out", str(tmp_path), *arguments])
    assert done.value.code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_round_of_a_plain_training_run_is_refused(two_rounds, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["publish", str(two_rounds[0] / "round_0"), "--round", "1", "--out", str(tmp_path)])
    assert done.value.code == 2 and "not a self-training run" in capsys.readouterr().err


def test_a_rounds_wall_time_leaves_out_the_time_the_run_was_stopped(tmp_path):
    def record(time, round_index, step, eta):
        return json.dumps({"time": time, "round": round_index, "phase": "student",
                           "step": step, "total": 9, "eta_s": eta})
    lines = [record(0, 0, 0, None), record(50, 0, 1, 5.0),       # round 0: 50 s
             record(100, 1, 0, None), record(160, 1, 1, 5.0),    # round 1: 60 s, then killed
             record(5000, 1, 1, None), record(5030, 1, 2, 5.0),  # resumed: 30 s
             record(5040, 2, 0, None), record(5100, 2, 1, 5.0)]  # round 2: 60 s
    (tmp_path / "progress.jsonl").write_text("\n".join(lines) + "\n")
    assert round_wall_time_hours(tmp_path, 1) * 3600 == pytest.approx(90)
    assert round_wall_time_hours(tmp_path, 2) * 3600 == pytest.approx(60)
    assert round_wall_time_hours(tmp_path, 3) == 0


# Resuming after a kill


def _stop_at(round_index, phase, step):
    def callback(record):
        if (record["round"], record["phase"], record["step"]) == (round_index, phase, step):
            raise Killed()
    return callback


def _mtimes(paths):
    return {path: path.stat().st_mtime_ns for path in paths}


@pytest.mark.parametrize("phase", ["teacher", "pseudo-label", "student", "fine-tune", "eval"])
def test_a_run_killed_in_any_phase_resumes_there_and_ends_as_if_never_stopped(
        phase, two_rounds, tmp_path, monkeypatch):
    reference = two_rounds[0]
    run_dir = tmp_path / "run"
    config = _config(run_dir, rounds=1, student_init="teacher")
    writes = []
    if phase == "pseudo-label":
        def killed_on_third_write(labels, path):
            writes.append(path)
            if len(writes) == 3:
                raise Killed()
            write_png(labels, path)
        monkeypatch.setattr(pseudo_label, "write_png", killed_on_third_write)
        stop = None
    else:
        round_index = 0 if phase == "teacher" else 1
        stop = _stop_at(round_index, phase, 0 if phase == "eval" else 2)
    with pytest.raises(Killed):
        selftrain(config, on_progress=stop)

    finished = [run_dir / "round_0" / "last.pt"] if phase != "teacher" else []
    finished += sorted((run_dir / "round_1" / "pseudo").glob("*.png"))
    before = _mtimes(finished)
    lines = len(read_jsonl(run_dir / "progress.jsonl"))
    resume_selftrain(run_dir)
    assert _mtimes(finished) == before  # finished rounds and written labels are kept
    resumed = read_jsonl(run_dir / "progress.jsonl")[lines:]
    assert resumed[0]["phase"] == phase
    if phase in ("teacher", "student", "fine-tune"):
        assert resumed[0]["step"] == 1  # killed after step 2, before its checkpoint
    if phase == "pseudo-label":
        assert resumed[0]["step"] == 2 and len(writes) == 3 + 2
    assert not list((run_dir / "round_1" / "pseudo").glob(".*"))

    for part in ("round_0", "round_1/student", "round_1/finetune"):
        expected, got = _losses(reference / part), _losses(run_dir / part)
        assert [s for s, _ in got] == [s for s, _ in expected] == [1, 2, 3], part
        for (_, a), (_, b) in zip(expected, got):
            assert a == pytest.approx(b, rel=1e-4, abs=1e-6), part
    for stem in (f"{i:05d}" for i in range(4)):
        got, expected = (np.asarray(Image.open(root / "round_1" / "pseudo" / f"{stem}.png"))
                         for root in (run_dir, reference))
        assert np.array_equal(got, expected), stem
    got = json.loads((run_dir / "round_1" / "metrics.json").read_text())
    expected = json.loads((reference / "round_1" / "metrics.json").read_text())
    assert got["mean_iou"] == pytest.approx(expected["mean_iou"], rel=1e-4)

    lines = len(read_jsonl(run_dir / "progress.jsonl"))
    resume_selftrain(run_dir)  # a finished run: nothing to redo
    assert len(read_jsonl(run_dir / "progress.jsonl")) == lines


def test_a_process_killed_with_sigkill_resumes_from_the_command_line(two_rounds, tmp_path):
    reference = two_rounds[0]
    config_file, run_dir = tmp_path / "tiny.yaml", tmp_path / "run"
    config_file.write_text(yaml.safe_dump({**TINY, "rounds": 1, "student_init": "teacher"}))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "ainnoseg", "selftrain"]
    process = subprocess.Popen([*command, str(config_file), f"run_dir={run_dir}"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    def in_student_phase():
        try:
            records = read_jsonl(run_dir / "progress.jsonl")
        except ValueError:  # caught a line half-written
            return False
        return any(r["phase"] == "student" and r["step"] >= 2 for r in records)

    while time.time() < deadline and not in_student_phase():
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run_dir / "round_1" / "metrics.json").is_file(), "killed too late"
    teacher = _mtimes([run_dir / "round_0" / "last.pt"])
    result = subprocess.run([*command, "--resume", str(run_dir)], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "val mIoU" in result.stdout and _mtimes(list(teacher)) == teacher
    for part in ("round_1/student", "round_1/finetune"):
        expected, got = _losses(reference / part), _losses(run_dir / part)
        assert [s for s, _ in got] == [1, 2, 3], part
        for (_, a), (_, b) in zip(expected, got):
            assert a == pytest.approx(b, rel=1e-4, abs=1e-6), part


def test_the_command_line_explains_a_missing_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["selftrain", "--resume", str(tmp_path / "nothing")])
    assert done.value.code == 2 and "no selftrain.yaml" in capsys.readouterr().err


def test_torchrun_shares_the_pool_and_the_training_between_processes(tmp_path):
    config_file, run_dir = tmp_path / "tiny.yaml", tmp_path / "run"
    config_file.write_text(yaml.safe_dump({**TINY, "rounds": 1, "unlabeled_limit": 5}))
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         "--master_port=29547", "-m", "ainnoseg", "selftrain", str(config_file),
         f"run_dir={run_dir}"], capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((run_dir / "round_1" / "pseudo").glob("*.png"))) == 5
    labelling = [r for r in read_jsonl(run_dir / "progress.jsonl") if r["phase"] == "pseudo-label"]
    assert labelling[-1]["total"] == 3  # rank 0 labels items 0, 2 and 4
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [row["round"] for row in summary["rounds"]] == [0, 1]
    assert summary["rounds"][1]["labelled_by"] == str(run_dir / "round_0" / "last.pt")


# Nothing is overwritten, nothing half-made is left


def _file_bytes(folder):
    return {path.relative_to(folder): path.read_bytes()
            for path in sorted(Path(folder).rglob("*")) if path.is_file()}


def test_selftraining_twice_into_one_run_directory_leaves_it_byte_for_byte(
        two_rounds, tmp_path, capsys):
    run_dir, _, _ = two_rounds
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump({**TINY, "rounds": 2, "student_init": "teacher"}))
    before = _file_bytes(run_dir)
    with pytest.raises(SystemExit) as done:
        main(["selftrain", str(config_file), f"run_dir={run_dir}"])
    assert done.value.code == 2
    assert f"ainnoseg selftrain --resume {run_dir}" in capsys.readouterr().err
    assert _file_bytes(run_dir) == before


def test_selftraining_into_a_training_runs_directory_is_refused_untouched(tmp_path, capsys):
    run_dir = tmp_path / "trained"
    run_dir.mkdir()
    for name in ("config.yaml", "metrics.jsonl", "last.pt", "best.pt"):
        (run_dir / name).write_bytes(name.encode())
    before = _file_bytes(run_dir)
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump({**TINY, "rounds": 1}))
    with pytest.raises(SystemExit) as done:
        main(["selftrain", str(config_file), f"run_dir={run_dir}"])
    assert done.value.code == 2 and "already holds a run" in capsys.readouterr().err
    assert _file_bytes(run_dir) == before


def test_a_missing_teacher_is_refused_before_the_run_directory_is_made(tmp_path, capsys):
    config_file, run_dir = tmp_path / "tiny.yaml", tmp_path / "run"
    config_file.write_text(yaml.safe_dump({**TINY, "rounds": 1}))
    with pytest.raises(SystemExit) as done:
        main(["selftrain", str(config_file), f"run_dir={run_dir}",
              f"teacher={tmp_path / 'missing.pt'}"])
    assert done.value.code == 2 and "missing.pt" in capsys.readouterr().err
    assert not run_dir.exists()


def test_resume_takes_the_same_safe_overrides_as_training(two_rounds, tmp_path, capsys):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(two_rounds[0], run_dir)
    with pytest.raises(SystemExit) as done:
        main(["selftrain", "--resume", str(run_dir), "workers=0", "log_every=5"])
    assert done.value.code == 0, capsys.readouterr().err
    saved = yaml.safe_load((run_dir / "selftrain.yaml").read_text())
    assert saved["log_every"] == 5 and saved["workers"] == 0
    with pytest.raises(SystemExit) as done:
        main(["selftrain", "--resume", str(run_dir), "lr=0.5"])
    error = capsys.readouterr().err
    assert done.value.code == 2 and "['lr'] would change the run" in error
