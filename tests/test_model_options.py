"""Architecture options (config keys da_channels, cam_energy, ocr_pixels,
ocr_channels):
each builds what it says, is refused by models it does not apply to, and
travels with the checkpoint, so a trained model loads back as it was built."""

import pytest
import torch

import ainnoseg
from ainnoseg.checkpoints.files import CheckpointError, load_model, save_checkpoint
from ainnoseg.config import ConfigError, load_config, model_options, saved_config
from ainnoseg.models.attention import ChannelAttention


def test_the_registered_ainnoseg_keeps_danets_width_and_adds_the_hrnet_features():
    """The defaults build the released architecture: DA at 270 // 4 = 67
    channels for HRNetV2-W18-Small, and OCR's pixels from those 67 and the
    270 HRNet channels."""
    model = ainnoseg.build_model("ainnoseg_w18s", num_classes=11)
    assert model.backbone.out_channels == 270
    assert model.head.attention.out_channels == 67
    assert model.head.ocr.pixels[0].weight.shape == (512, 67 + 270, 3, 3)
    assert model_options(load_config("configs/camvid_ainnoseg_w18s.yaml").to_dict()) == {}


def test_a_config_saved_before_ocr_pixels_had_its_default_builds_what_it_trained():
    """Configs without the key predate the option: OCR on the DA output.
    Every model's configs saved since hold ocr_pixels=da, which the models
    without OCR pixels accept."""
    assert model_options({"model": "ainnoseg_w18s"}) == {"ocr_pixels": "da"}
    assert saved_config({"model": "ainnoseg_w18s"}).ocr_pixels == "da"
    assert model_options({"model": "hrnetv2_w18s", "ocr_pixels": "da"}) == {}
    assert load_config(None, ["model=danet_r18", "ocr_pixels=da"]).ocr_pixels == "da"


def test_da_channels_sets_the_dual_attention_width_of_every_model_with_it():
    for name in ("ainnoseg_w18s", "hrnet_da_w18s", "danet_r18"):
        model = ainnoseg.build_model(name, num_classes=5, da_channels=96)
        assert model.head.attention.out_channels == 96, name
        assert model.head.attention.pam[0][0].out_channels == 96, name


def test_ocr_channels_sets_the_ocr_width_of_ainnoseg_and_hrnet_ocr():
    for name in ("ainnoseg_w18s", "ocrnet_hrnet_w18s"):
        model = ainnoseg.build_model(name, num_classes=5, ocr_channels=128)
        ocr = model.head.ocr
        assert ocr.pixels[0].out_channels == 128 and ocr.classify.in_channels == 128, name
        assert ocr.object_attention.to_query[0][0].out_channels == 64, name
        with torch.no_grad():
            assert model.eval()(torch.zeros(1, 3, 64, 64))["out"].shape == (1, 5, 64, 64)
    default = ainnoseg.build_model("ocrnet_hrnet_w18s", num_classes=5).head.ocr
    assert default.pixels[0].out_channels == 512
    assert default.object_attention.to_query[0][0].out_channels == 256


def test_models_refuse_options_they_do_not_have():
    with pytest.raises(ValueError, match="takes no option ocr_pixels"):
        ainnoseg.build_model("danet_r18", num_classes=5, ocr_pixels="da+backbone")
    with pytest.raises(ValueError, match="its options: none"):
        ainnoseg.build_model("hrnetv2_w18s", num_classes=5, da_channels=64)
    with pytest.raises(ConfigError, match="not an option of hrnetv2_w18s"):
        load_config(None, ["model=hrnetv2_w18s", "cam_energy=mean"])
    with pytest.raises(ConfigError, match="ocr_pixels='backbone' is not allowed"):
        load_config(None, ["ocr_pixels=backbone"])
    with pytest.raises(ConfigError, match="da_channels=-1"):
        load_config(None, ["da_channels=-1"])
    with pytest.raises(ConfigError, match="ocr_channels=-8"):
        load_config(None, ["ocr_channels=-8"])
    with pytest.raises(ConfigError, match="takes da_channels, cam_energy$"):
        load_config(None, ["model=danet_r18", "ocr_channels=128"])


def test_model_options_holds_only_what_differs_from_the_registered_architecture():
    assert model_options(load_config(None, []).to_dict()) == {}
    config = load_config(None, ["ocr_pixels=da", "da_channels=128",
                                "ocr_channels=256"]).to_dict()
    assert model_options(config) == {"da_channels": 128, "ocr_pixels": "da",
                                     "ocr_channels": 256}


def _tiled(x):
    return x.repeat(1, 1, 2, 2)


def test_mean_cam_energy_does_not_depend_on_the_image_size():
    """A feature map tiled 2x2 has the same channel statistics and 4x the
    positions: the mean energy gives the tiled map the tiled attention, the
    summed one (DANet) sharpens its softmax and does not."""
    torch.manual_seed(0)
    x = torch.randn(1, 8, 5, 6)
    for energy, same in (("mean", True), ("sum", False)):
        cam = ChannelAttention(energy=energy)
        torch.nn.init.constant_(cam.gamma, 1.0)
        tiled_out, out_tiled = cam(_tiled(x)), _tiled(cam(x))
        assert torch.allclose(tiled_out, out_tiled, atol=1e-5) is same, energy


def test_a_checkpoint_loads_back_with_the_options_it_was_trained_with(tmp_path):
    config = load_config(None, ["model=ainnoseg_w18s", "ocr_pixels=da+backbone",
                                "da_channels=40", "cam_energy=mean", "ocr_channels=96"])
    torch.manual_seed(0)
    model = ainnoseg.build_model("ainnoseg_w18s", num_classes=3, **model_options(config.to_dict()))
    path = tmp_path / "model.pt"
    save_checkpoint({"config": config.to_dict(), "model": model.state_dict(),
                     "class_names": ["a", "b", "c"]}, path)
    loaded, _ = load_model(path)
    assert loaded.head.attention.out_channels == 40
    assert loaded.head.ocr_pixels == "da+backbone"
    assert loaded.head.attention.cam[1].energy == "mean"
    assert loaded.head.ocr.pixels[0].out_channels == 96
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images)["out"], model.eval()(images)["out"])


def test_a_checkpoint_whose_config_lacks_ocr_pixels_says_how_it_was_read(tmp_path):
    """Without the key the config means the earlier default, OCR on the DA
    output; weights of the current default then do not fit, and the error says why."""
    model = ainnoseg.build_model("ainnoseg_w18s", num_classes=3)
    path = tmp_path / "model.pt"
    save_checkpoint({"config": {"model": "ainnoseg_w18s"}, "model": model.state_dict(),
                     "class_names": ["a", "b", "c"]}, path)
    with pytest.raises(CheckpointError, match="its config has no ocr_pixels, so it was read as "
                                              "ocr_pixels=da"):
        load_model(path)
