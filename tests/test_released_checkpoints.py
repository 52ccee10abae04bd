"""The checkpoints committed under assets/checkpoints/ match their manifests."""

import hashlib
import json
import shlex
from pathlib import Path

import pytest
import torch

from ainnoseg.checkpoints.files import load_model
from ainnoseg.cli import main

ROOT = Path(__file__).resolve().parents[1]
RELEASES = ROOT / "assets" / "checkpoints"
MANIFESTS = {path.parent.name: json.loads(path.read_text())
             for path in sorted(RELEASES.glob("*/manifest.json"))}
ENTRIES = [(dataset, name) for dataset, manifest in MANIFESTS.items() for name in manifest]
CAMVID = ROOT.parent / "shared" / "datasets" / "camvid"


@pytest.mark.parametrize("dataset, name", ENTRIES, ids=[f"{d}/{n}" for d, n in ENTRIES])
def test_file_matches_its_manifest_entry(dataset, name):
    entry = MANIFESTS[dataset][name]
    path = RELEASES / dataset / entry["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    assert all(value.dtype != torch.float32 for value in
               torch.load(path, weights_only=True)["model"].values()), "fp16 weights only"
    model, state = load_model(path, num_classes=len(entry["class_names"]))
    # a self-training round's steps count its student's before its fine-tune's
    student_steps = entry.get("selftrain", {}).get("student_iterations", 0)
    assert state["config"]["model"] == entry["model"]
    assert state["step"] == entry["best_step"] - student_steps
    with torch.no_grad():
        logits = model.eval()(torch.rand(1, 3, 64, 96))["out"]
    assert logits.shape == (1, len(entry["class_names"]), 64, 96)


def test_the_synthetic_zoo_holds_the_three_compared_families():
    models = {entry["model"] for entry in MANIFESTS["synthetic"].values()}
    assert {"hrnetv2_w18s", "danet_r18", "ainnoseg_w18s"} <= models
    budgets = {(entry["iterations"], entry["config"]["batch_size"],
                tuple(entry["config"]["crop_size"])) for entry in MANIFESTS["synthetic"].values()}
    assert len(budgets) == 1, f"the zoo's models were trained at different budgets: {budgets}"


def _rerun(entry, tmp_path, monkeypatch, capsys):
    """As a user would: run the manifest's own command from the project root."""
    recorded = entry["val"]["single_scale"]
    arguments = shlex.split(recorded["command"])[1:]
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as done:
        main(arguments + ["--quiet", "--json", str(tmp_path / "scores.json")])
    assert done.value.code == 0, capsys.readouterr().err
    scores = json.loads((tmp_path / "scores.json").read_text())
    for key in ("mean_iou", "pixel_accuracy", "boundary_iou"):
        assert scores[key] == pytest.approx(recorded[key], abs=2e-3), key


@pytest.mark.skipif(not CAMVID.is_dir(), reason=f"CamVid not found at {CAMVID} (a fresh clone has no ../shared)")
def test_recorded_camvid_eval_command_reproduces_the_single_scale_score(tmp_path, monkeypatch, capsys):
    _rerun(MANIFESTS["camvid"]["hrnetv2_w18s"], tmp_path, monkeypatch, capsys)  # the smallest


def test_recorded_synthetic_eval_command_reproduces_the_single_scale_score(tmp_path, monkeypatch, capsys):
    _rerun(MANIFESTS["synthetic"]["hrnetv2_w18s"], tmp_path, monkeypatch, capsys)
