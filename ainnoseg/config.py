"""Run configuration: one flat dataclass, read from YAML, overridden by key=value.

    config = load_config("configs/camvid_ainnoseg_w18s.yaml", ["lr=0.02", "iterations=500"])

Every key, its type and its default are below; a wrong key or value is
refused with the allowed ones named. The config is saved in every run
directory and checkpoint.
"""

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .data.class_weights import METHODS as CLASS_WEIGHTING
from .data.mosaic import MASK_RESIZES
from .files import atomic_write
from .inference.multiscale import PAPER_SCALES
from .inference.precision import AMP_SETTINGS
from .losses import CRITERIA
from .models.attention import CAM_ENERGIES
from .models.heads import OCR_PIXEL_SOURCES
from .registry import list_models, model_option_names

CHOICES = {
    "amp": AMP_SETTINGS,
    "criterion": tuple(CRITERIA),
    "class_weighting": CLASS_WEIGHTING,
    "cam_energy": CAM_ENERGIES,
    "ocr_pixels": OCR_PIXEL_SOURCES,
    "mosaic_masks": MASK_RESIZES,
    "mode": ("whole", "slide"),
    "student_init": ("scratch", "teacher"),
    "student_data": ("pseudo", "labelled"),
}

# Config keys that are architecture options of some models (see
# models/heads.py), with the value that builds the registered architecture.
MODEL_OPTION_DEFAULTS = {"da_channels": 0, "cam_energy": "sum", "ocr_pixels": "da+backbone",
                         "ocr_channels": 0}
# Options whose registered value changed, with the value configs saved before
# then were trained with: a saved config without the key means it, and every
# model's saved config may hold it (configs save all keys).
EARLIER_DEFAULTS = {"ocr_pixels": "da"}


@dataclass
class Config:
    """Everything a training run needs."""

    # data
    data: str = "synthetic"  # "synthetic" or a dataset folder
    train_split: str = "train"
    val_split: str = "val"
    crop_size: tuple[int, int] = (256, 320)
    scale: tuple[int, int] = (256, 320)  # base scale the rescale ratio multiplies
    ratio_range: tuple[float, float] = (0.5, 2.0)
    cat_max_ratio: float = 0.75
    mosaic_ratio: float = 0.3  # Mosaic samples per original (the paper: 0.3)
    # How Mosaic halves its canvas's labels: nearest (keeps one pixel of four)
    # or rarest (the rarest class of each 2x2 block); see data/mosaic.py.
    mosaic_masks: str = "nearest"
    batch_size: int = 8  # global batch, over all processes and accumulation
    accumulate: int = 1  # micro-batches per optimizer step
    workers: int = 2
    # model and loss
    model: str = "ainnoseg_w18s"
    pretrained: bool = False
    init_checkpoint: str = ""  # start from these weights (e.g. a teacher); "" for none
    sync_bn: bool = False  # SyncBatchNorm under DDP (CUDA only in PyTorch)
    criterion: str = "ce"
    # Architecture options (models with dual attention; see models/heads.py):
    da_channels: int = 0  # the DA branches' width; 0: in_channels // 4 (DANet)
    cam_energy: str = "sum"  # CAM's energy: sum over the positions (DANet) or mean
    ocr_pixels: str = "da+backbone"  # AinnoSeg's OCR pixels: da+backbone (concatenated), or da
    ocr_channels: int = 0  # OCR's width (AinnoSeg, HRNet-OCR); 0: HRNet-OCR's 512
    # Per-class loss weights from the training labels: none, median_frequency
    # (SegNet) or enet (ENet's 1 / ln(1.02 + p)); see ainnoseg/data/class_weights.py.
    class_weighting: str = "none"
    loss_weights: dict = field(default_factory=dict)  # empty: the model's paper's weights
    # optimisation: SGD, poly decay after a linear warm-up
    iterations: int = 1000
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    poly_power: float = 0.9
    warmup_iterations: int = 0
    grad_clip: float = 0.0  # max gradient norm; 0 disables
    # speed
    amp: str = "auto"  # auto: bf16 where the CPU or GPU supports it, else fp32
    channels_last: bool = True
    # evaluation
    eval_every: int = 500
    eval_scales: tuple[float, ...] = (1.0,)
    eval_flip: bool = False
    mode: str = "whole"
    val_limit: int = 0  # evaluate the first N validation samples only; 0: all
    # Val images whose predictions each evaluation saves in the run directory
    # (snapshots/), to watch the model learn; chosen once per run; 0: none.
    snapshot_images: int = 4
    # bookkeeping
    run_dir: str = "runs/run"
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 100
    # self-training (`ainnoseg selftrain`): the paper's teacher/student rounds
    teacher: str = ""  # round-0 teacher checkpoint; "" trains one with this config
    unlabeled: str = ""  # pool to pseudo-label: an image folder or dataset; "" = `data`
    unlabeled_split: str = "test"  # the pool's split (synthetic's test split has labels)
    unlabeled_limit: int = 0  # pseudo-label the first N pool images only; 0: all
    rounds: int = 2  # student rounds after the teacher (the paper: 2)
    threshold: float = 0.0  # pixels whose max probability is below it -> ignore (ST++: 0.95)
    # the student: "scratch" builds a new one (`pretrained` applies), "teacher" copies it
    student_init: str = "scratch"
    # Share of the student's training samples that are pseudo-labelled; 1.0 trains
    # on pseudo-labels only (the paper), 0.5 draws as many labelled samples.
    pseudo_ratio: float = 1.0
    # What the students train on: "pseudo" (self-training), or "labelled", the
    # budget-matched control: the same rounds and schedule on the labelled set
    # alone, no pseudo-labels, so a round's gain can be told from its extra training.
    student_data: str = "pseudo"
    student_iterations: int = 0  # 0: `iterations`
    finetune_iterations: int = 0  # 0: `iterations`
    pseudo_scales: tuple[float, ...] = PAPER_SCALES
    pseudo_flip: bool = True
    pseudo_batch: int = 4  # images per forward while pseudo-labelling

    def validate(self):
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}={getattr(self, key)!r} is not allowed; choose one of {list(allowed)}")
        if self.model not in list_models():
            raise ConfigError(f"model={self.model!r} is unknown; known models: {', '.join(list_models())}")
        self._validate_model_options()
        if self.batch_size < 1 or self.batch_size % self.accumulate:
            raise ConfigError(
                f"batch_size={self.batch_size} must be a positive multiple of "
                f"accumulate={self.accumulate}")
        for key in ("iterations", "eval_every", "log_every", "checkpoint_every", "accumulate"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}={getattr(self, key)} must be at least 1")
        if self.snapshot_images < 0:
            raise ConfigError(f"snapshot_images={self.snapshot_images} must be 0 (save no "
                              "predictions over training) or a count of val images, e.g. 4")
        if self.val_limit < 0:
            raise ConfigError(f"val_limit={self.val_limit} must be 0 (every validation sample) "
                              "or a positive count")
        if self.lr <= 0:
            raise ConfigError(f"lr={self.lr} must be positive")
        if not self.eval_scales or any(not s > 0 for s in self.eval_scales):
            raise ConfigError(
                f"eval_scales={list(self.eval_scales)} must be positive numbers, e.g. [1.0] or "
                "[0.75, 1.0, 1.25]")
        for key in ("crop_size", "scale"):
            if min(getattr(self, key)) < 1:
                raise ConfigError(f"{key}={list(getattr(self, key))} must be positive "
                                  "(height, width) in pixels, e.g. [256, 320]")
        self._validate_selftrain()
        return self

    def _validate_model_options(self):
        if self.da_channels < 0:
            raise ConfigError(f"da_channels={self.da_channels} must be 0 (in_channels // 4) "
                              "or a positive width")
        if self.ocr_channels < 0:
            raise ConfigError(f"ocr_channels={self.ocr_channels} must be 0 (HRNet-OCR's 512) "
                              "or a positive width")
        takes = model_option_names(self.model)
        for key, default in MODEL_OPTION_DEFAULTS.items():
            if key not in takes and getattr(self, key) not in (default, EARLIER_DEFAULTS.get(key)):
                options = [k for k in takes if k in MODEL_OPTION_DEFAULTS]
                raise ConfigError(
                    f"{key} is not an option of {self.model} (it is one of models with dual "
                    f"attention or OCR); {self.model} takes {', '.join(options) or 'none'}")

    def _validate_selftrain(self):
        for key in ("rounds", "unlabeled_limit", "student_iterations", "finetune_iterations"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}={getattr(self, key)} must be 0 or more")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold={self.threshold} must lie in [0, 1]; 0 keeps every pixel")
        if not 0.0 < self.pseudo_ratio <= 1.0:
            raise ConfigError(
                f"pseudo_ratio={self.pseudo_ratio} must lie in (0, 1]: the share of student "
                "samples that are pseudo-labelled (1.0: pseudo-labels only, as in the paper)")
        if self.pseudo_batch < 1:
            raise ConfigError(f"pseudo_batch={self.pseudo_batch} must be at least 1")
        if not self.pseudo_scales or any(not s > 0 for s in self.pseudo_scales):
            raise ConfigError(
                f"pseudo_scales={list(self.pseudo_scales)} must be positive numbers, e.g. [1.0]")

    def to_dict(self):
        return dataclasses.asdict(self)


def model_options(config):
    """The architecture options a config dict (a run's or a checkpoint's) sets
    away from the registered architecture, as `build_model` keywords for its
    model; {} for the registered architecture. A key the config lacks means
    the value it was trained with (EARLIER_DEFAULTS, else the default)."""
    takes = model_option_names(config["model"])
    values = {key: config.get(key, EARLIER_DEFAULTS.get(key, default))
              for key, default in MODEL_OPTION_DEFAULTS.items() if key in takes}
    return {key: value for key, value in values.items() if value != MODEL_OPTION_DEFAULTS[key]}


def saved_config(values):
    """A validated Config from the config dict a run or checkpoint saved: keys
    it lacks because it predates them take the value it was trained with."""
    return from_dict({**EARLIER_DEFAULTS, **values})


def load_saved_config(path, overrides=()):
    """`load_config` for a config file a run saved (see `saved_config`)."""
    return load_config(path, overrides, defaults=EARLIER_DEFAULTS)


# Keys a resumed run may change: they leave its result alone (the data's
# location, loader processes, how often it logs and checkpoints).
RESUME_OVERRIDABLE = ("data", "workers", "log_every", "checkpoint_every")


class ConfigError(ValueError):
    """A configuration key or value that cannot be used; names the key."""


def resume_changes(overrides, restart_hint):
    """{key: value} from the key=value words given with --resume; keys outside
    RESUME_OVERRIDABLE are refused, `restart_hint` saying how to start anew."""
    changes = parse_overrides(overrides)
    refused = sorted(set(changes) - set(RESUME_OVERRIDABLE))
    if refused:
        raise ConfigError(
            f"a resumed run keeps its config; {refused} would change the run (only "
            f"{', '.join(RESUME_OVERRIDABLE)} may change): start a new run instead, "
            f"{restart_hint}")
    return changes


TYPE_NAMES = {int: "an integer", float: "a number", str: "text"}


def _items(value):
    """The values of a list, of a comma-separated string ("128,160") or of one value."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str) and "," in value:
        try:
            return [yaml.safe_load(part) for part in value.split(",")]
        except yaml.YAMLError:
            raise ValueError("values separated by commas, e.g. 64,80") from None
    return [value]


def _yaml_problem(error):
    """A YAML error in one line: what is wrong, and where (line, column)."""
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    if isinstance(error, yaml.constructor.ConstructorError) and "python" in problem:
        return (f"{where}{problem.split(' for the tag ')[-1]} is a Python object tag, which "
                "a config may not hold: write plain values (numbers, text, lists, mappings)")
    return f"{where}{problem}"


def _yaml_value(text, source):
    """A value written as YAML (an override's, or a part of one); a ConfigError
    naming `source` if it is not YAML."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source!r} is not a readable value ({_yaml_problem(error)}); write "
                          "lists as [64, 80] and quote text that holds : or #") from None


def _convert(key, value, annotation):
    """Coerce a YAML value to the field's type, or explain what was expected."""
    origin = typing.get_origin(annotation) or annotation
    try:
        if origin is tuple:
            items = _items(value)
            item_types = typing.get_args(annotation)
            if item_types[-1] is Ellipsis:
                return tuple(_convert(key, v, item_types[0]) for v in items)
            if len(items) != len(item_types):
                example = ", ".join(["256", "320"][:len(item_types)])
                raise ValueError(f"{len(item_types)} values, e.g. {key}=[{example}]")
            return tuple(_convert(key, v, t) for v, t in zip(items, item_types))
        if origin is bool:
            if not isinstance(value, bool):
                raise ValueError("true or false")
            return value
        if origin is dict:
            if not isinstance(value, dict):
                raise ValueError("a mapping like {out: 1.0, ocr: 0.4}")
            return {str(k): float(v) for k, v in value.items()}
        if origin is str and isinstance(value, bool):
            return "on" if value else "off"  # YAML 1.1 reads a bare off/on as a bool
        if origin in (int, float):
            return _number(value, origin)
        return origin(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{key}={value!r} is not valid: expected {error}") from None


def _number(value, kind):
    """An int or float from a number or numeric text ("1e3"); bools are refused."""
    if isinstance(value, bool):
        raise ValueError(TYPE_NAMES[kind])
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(TYPE_NAMES[kind]) from None
    if kind is float:
        return number
    if not number.is_integer():
        raise ValueError("an integer")
    return int(value) if isinstance(value, int) else int(number)


def from_dict(values):
    """A validated Config from a dict; unknown keys are refused."""
    fields = {f.name: f for f in dataclasses.fields(Config)}
    hints = typing.get_type_hints(Config)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        guesses = [f"{match[0]} (for {key})" for key in unknown
                   if (match := difflib.get_close_matches(key, fields, n=1))]
        hint = f"; did you mean {', '.join(guesses)}?" if guesses else ""
        raise ConfigError(f"unknown config key(s) {unknown}{hint}; known keys: "
                          f"{', '.join(fields)}")
    converted = {key: _convert(key, value, hints[key]) for key, value in values.items()}
    return Config(**converted).validate()


def parse_overrides(overrides):
    """["lr=0.02", "crop_size=[512,512]"] -> {"lr": 0.02, "crop_size": [512, 512]}."""
    values = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value, e.g. lr=0.02")
        key, text = item.split("=", 1)
        values[key.strip()] = _yaml_value(text, item)
    return values


def load_config(path=None, overrides=(), defaults=None):
    """Config from a YAML file (or the defaults) with key=value overrides applied;
    `defaults` ({key: value}) replace Config's own defaults under both."""
    values = dict(defaults or {})
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"no config file at {path}")
        try:
            from_file = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path} is not a readable config, {_yaml_problem(error)}; "
                              "fix it there (see configs/ for examples)") from None
        if not isinstance(from_file, dict):
            raise ConfigError(f"{path} must hold a mapping of config keys")
        values.update(from_file)
    values.update(parse_overrides(overrides))
    return from_dict(values)


PATH_KEYS = ("data", "init_checkpoint", "teacher", "unlabeled")  # files and folders a run reads


def with_absolute_paths(config):
    """`config` with each relative path it names (PATH_KEYS) made absolute, so
    that the config a run saves works from any directory: a run started in
    notebooks/ is resumed or reproduced from the repository root as it is.
    Values that name no file or folder here ("synthetic", "") stay as they are."""
    changes = {}
    for key in PATH_KEYS:
        value = getattr(config, key)
        if value and value != "synthetic" and not Path(value).is_absolute() and Path(value).exists():
            changes[key] = str(Path(value).resolve())
    return dataclasses.replace(config, **changes)


def save_config(config, path):
    """Write `config` as YAML, atomically (a resumed self-training run reads it back)."""
    text = yaml.safe_dump(plain_values(config.to_dict()), sort_keys=False)
    atomic_write(path, lambda handle: handle.write(text.encode()))


def plain_values(values):
    """Tuples -> lists, so the YAML and the checkpoint hold plain types."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
