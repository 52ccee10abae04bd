import pytest
import torch

import ainnoseg
from ainnoseg.checkpoints.files import save_checkpoint
from ainnoseg.cli import main
from ainnoseg.inference.export import export_onnx, export_torchscript, onnx_difference
from model_helpers import calibrate_batch_norms, with_attention_on

pytest.importorskip("onnxruntime")

# One model of every family: FCN, OCR, dual attention on HRNet and on ResNet, AinnoSeg.
FAMILIES = ["hrnetv2_w18s", "ocrnet_hrnet_w18s", "hrnet_da_w18s", "danet_r18", "ainnoseg_w18s"]
SIZE = (64, 96)


def _model(name):
    """In eval mode, attention switched on (as built, gamma = 0 would multiply
    the exported attention by zero) and near unit-scale activations."""
    model = with_attention_on(ainnoseg.build_model(name, num_classes=4))
    return calibrate_batch_norms(model, torch.randn(2, 3, *SIZE))


# The exports free in batch and size (the slowest to write) are checked through
# the command line below, at another batch and size than traced: HRNet-OCR's,
# whose graph holds HRNetV2's (its backbone, and an FCN head for its regions).
@pytest.mark.parametrize("name", [name for name in FAMILIES
                                  if name not in ("hrnetv2_w18s", "ocrnet_hrnet_w18s")])
def test_onnxruntime_matches_pytorch(name, tmp_path):
    model = _model(name)
    path = export_onnx(model, tmp_path / f"{name}.onnx", SIZE)
    images = torch.randn(1, 3, *SIZE)
    with torch.no_grad():
        scale = model(images)["out"].abs().max().item()
    assert onnx_difference(path, model, images) <= 1e-4 * max(1.0, scale) + 1e-3


def test_torchscript_matches_pytorch(tmp_path):
    model = _model("ainnoseg_w18s")
    path = export_torchscript(model, tmp_path / "model.pt", SIZE)
    images = torch.randn(1, 3, *SIZE)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(path))(images), model(images)["out"],
                                   rtol=1e-4, atol=1e-4)


def _checkpoint(path, config, name="hrnetv2_w18s"):
    model = ainnoseg.build_model(name, num_classes=3)
    save_checkpoint({"model": model.state_dict(), "config": {"model": name, **config},
                     "class_names": ["a", "b", "c"], "palette": [], "metrics": {}, "step": 0},
                    path)
    return model.eval()


def test_onnx_takes_any_batch_and_size_and_the_weights_file_is_named(tmp_path, capsys):
    import onnxruntime

    model = _checkpoint(tmp_path / "ckpt.pt", {"scale": [64, 96], "crop_size": [32, 64]},
                        name="ocrnet_hrnet_w18s")
    with pytest.raises(SystemExit) as done:
        main(["export", str(tmp_path / "ckpt.pt"), "--onnx", str(tmp_path / "m.onnx")])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert "any batch and image size (traced at 64x96, the training frames' size" in out
    assert f"{tmp_path / 'm.onnx.data'}, which must stay beside it" in out
    assert "onnxruntime logits differ" in out
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"),
                                           providers=["CPUExecutionProvider"])
    images = torch.randn(3, 3, 96, 128)  # another batch and size than traced
    (logits,) = session.run(None, {"images": images.numpy()})
    with torch.no_grad():
        expected = model(images)["out"]
    assert logits.shape == (3, 3, 96, 128)
    assert float((torch.from_numpy(logits) - expected).abs().max()) <= 1e-4 * max(
        1.0, expected.abs().max().item()) + 1e-3


def test_a_size_below_the_networks_stride_is_refused_in_one_line(tmp_path, capsys):
    _checkpoint(tmp_path / "ckpt.pt", {})
    with pytest.raises(SystemExit) as done:
        main(["export", str(tmp_path / "ckpt.pt"), "--onnx", str(tmp_path / "m.onnx"),
              "--size", "16", "16"])
    err = capsys.readouterr().err.strip().splitlines()
    assert done.value.code == 2 and len(err) == 1
    assert err[0].startswith("error: size 16x16 is smaller than the network's stride 32")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("name, free", [("hrnetv2_w18s", True), ("ocrnet_hrnet_w18s", True),
                                        ("hrnet_da_w18s", False), ("danet_r18", False),
                                        ("ainnoseg_w18s", False)])
def test_only_models_without_position_attention_export_for_any_size(name, free):
    # The exporter unrolls position attention's chunk loop for the traced
    # shape: such a graph gives wrong logits where another size needs more chunks.
    from ainnoseg.inference.export import free_size_exports

    assert free_size_exports(ainnoseg.build_model(name, num_classes=4)) is free
