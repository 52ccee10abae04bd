from pathlib import Path

import pytest

from ainnoseg.cli import main
from ainnoseg.config import Config, ConfigError, load_config, save_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def _run(argv):
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    config = load_config(path)
    assert config.iterations > 0


def test_paper_config_holds_the_papers_numbers():
    config = load_config(Path(CONFIGS[0]).parent / "ade20k_ainnoseg_w48.yaml")
    assert (config.model, config.crop_size, config.batch_size) == ("ainnoseg_w48", (520, 520), 16)
    assert (config.lr, config.momentum, config.weight_decay, config.poly_power) == (
        0.02, 0.9, 1e-4, 0.9)
    assert config.mosaic_ratio == 0.3 and config.eval_flip and len(config.eval_scales) == 7


def test_overrides_are_typed_from_yaml(tmp_path):
    config = load_config(None, ["lr=0.5", "crop_size=[64, 96]", "eval_flip=true",
                                "loss_weights={out: 1, da: 0}"])
    assert config.lr == 0.5 and config.crop_size == (64, 96) and config.eval_flip is True
    assert config.loss_weights == {"out": 1.0, "da": 0.0}
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


@pytest.mark.parametrize("override, message", [
    ("learning_rate=0.1", r"unknown config key\(s\) \['learning_rate'\]; known keys: data"),
    ("amp=fp8", r"amp='fp8' is not allowed; choose one of \['auto', 'bf16', 'fp16', 'off'\]"),
    ("model=unet", "known models: .*ainnoseg_w18s"),
    ("iterations=ten", "iterations='ten' is not valid: expected"),
    ("iterations=2.5", "expected an integer"),
    ("crop_size=[1, 2, 3]", "expected 2 values"),
    ("eval_flip=3", "expected true or false"),
    ("batch_size=9", "multiple of accumulate"),
    ("lr", "must look like key=value"),
])
def test_bad_keys_and_values_name_the_key_and_the_allowed_values(override, message):
    overrides = [override, "accumulate=2"] if "batch_size" in override else [override]
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="no config file"):
        load_config(tmp_path / "nope.yaml")


def test_defaults_validate():
    assert Config().validate().model == "ainnoseg_w18s"


def test_given_defaults_yield_to_the_file_and_the_overrides(tmp_path):
    defaults = {"run_dir": "runs/from_name", "lr": 0.5}
    plain = tmp_path / "plain.yaml"
    plain.write_text("iterations: 10\n")
    assert load_config(plain, defaults=defaults).run_dir == "runs/from_name"
    named = tmp_path / "named.yaml"
    named.write_text("run_dir: elsewhere\n")
    config = load_config(named, defaults=defaults)
    assert config.run_dir == "elsewhere" and config.lr == 0.5
    assert load_config(named, ["run_dir=chosen"], defaults=defaults).run_dir == "chosen"


@pytest.mark.parametrize("override, message", [
    ("iterations=forty", "iterations='forty' is not valid: expected an integer$"),
    ("lr=fast", "lr='fast' is not valid: expected a number$"),
    ("itrations=40", r"did you mean iterations \(for itrations\)\?"),
    ("crop_size=[128]", r"expected 2 values, e.g. crop_size=\[256, 320\]"),
    ("eval_scales=[0, 1]", r"eval_scales=\[0.0, 1.0\] must be positive numbers"),
    ("crop_size=[0, 64]", "must be positive"),
])
def test_messages_say_what_is_expected(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_pairs_and_lists_can_be_written_with_commas():
    config = load_config(None, ["crop_size=128,160", "eval_scales=0.75,1,1.25", "iterations=1e3"])
    assert config.crop_size == (128, 160) and config.eval_scales == (0.75, 1.0, 1.25)
    assert config.iterations == 1000


@pytest.mark.parametrize("text, expected", [
    ("model: [hrnetv2_w18s\nlr: 0.01\n", "line"),
    ("lr: !!python/object/apply:os.system ['touch {marker}']\n", "python"),
])
def test_a_broken_or_unsafe_yaml_config_is_one_error_line(tmp_path, capsys, text, expected):
    config = tmp_path / "bad.yaml"
    marker = tmp_path / "ran"
    config.write_text(text.format(marker=marker))
    assert _run(["train", str(config), f"run_dir={tmp_path / 'run'}"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {config}"), lines
    assert expected in lines[0]
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_an_override_that_is_not_yaml_is_a_config_error():
    with pytest.raises(ConfigError, match=r"'crop_size=\[64, 80' is not a readable value"):
        load_config(None, ["crop_size=[64, 80"])


def test_val_limit_cannot_be_negative():
    with pytest.raises(ConfigError, match="val_limit=-1"):
        load_config(None, ["val_limit=-1"])
