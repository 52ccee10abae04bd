"""Released checkpoints and one call to load any model: `ainnoseg.load`.

    model = ainnoseg.load("camvid/ainnoseg_w18s")     # a released name
    model = ainnoseg.load("runs/my_run/best.pt")      # any checkpoint file
    model.meta.class_names, model.meta.palette        # what it predicts (a ModelMeta)

Releases live in `assets/checkpoints/<dataset>/`: float16 weights beside a
`manifest.json` that records how each file was trained and what it scores
(written by `ainnoseg publish`). A release's name is `<dataset>/<manifest key>`.
"""

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import IGNORE_INDEX
from ..runs.files import read_json
from . import cards as model_cards
from .files import CheckpointError, load_model

RELEASES_DIR = Path(__file__).resolve().parents[2] / "assets" / "checkpoints"


@dataclass(frozen=True)
class ModelMeta:
    """What `load` knows of a model besides its weights, as `model.meta`.

    One object, not loose attributes, so a wrapper carries it over whole
    (`optimize_for_inference` does; mmseg's `dataset_meta` is the same idea).

    Attributes:
        name: the released name ("camvid/ainnoseg_w18s") or the file's path.
        class_names: what each class index means.
        palette: an (r, g, b) colour per class: the built-in dataset's current
            colours when the classes are CamVid's, the synthetic scenes' or
            ADE20K's, else the checkpoint's own.
        config: the training config, as a dict.
        checkpoint_path: the file the weights came from.
        release: the manifest entry of a release; None for any other file.
        ignore_index: the label of pixels that belong to no class.
    """

    name: str
    class_names: list
    palette: list
    config: dict
    checkpoint_path: Path
    release: dict | None = None
    ignore_index: int = IGNORE_INDEX

    @property
    def num_classes(self):
        return len(self.class_names)


def _manifests(root):
    for path in sorted(Path(root).glob("*/manifest.json")):
        try:
            yield path.parent, read_json(path)
        except ValueError as error:
            raise CheckpointError(f"the release manifest {error}") from None


def _percent(scores, key):
    value = (scores or {}).get(key)
    return None if value is None else round(100 * value, 2)


def list_released(root=RELEASES_DIR):
    """The released checkpoints, one dict each, in manifest order per dataset.

    Each has "name" (what `load` takes, e.g. "camvid/ainnoseg_w18s"),
    "dataset", "model", "path", "megabytes", the single-scale val "mean_iou",
    "boundary_iou" and "pixel_accuracy" and the multi-scale + flip
    "ms_mean_iou" (in %, None where not scored), "iterations", "entry":
    the whole manifest entry (config, command, hardware, per-class scores),
    "works_on": the images it was made for, in words, and "card": its model
    card in Markdown (`ainnoseg.checkpoints.cards`: data, budget, scores, limits).
    """
    releases = []
    for folder, manifest in _manifests(root):
        for key, entry in manifest.items():
            path = folder / entry["file"]
            val = entry.get("val", {})
            single, multi = val.get("single_scale"), val.get("multi_scale_flip")
            releases.append({
                "name": f"{folder.name}/{key}", "dataset": folder.name,
                "model": entry["model"], "path": path,
                "megabytes": round(path.stat().st_size / 2**20, 1) if path.is_file() else None,
                "mean_iou": _percent(single, "mean_iou"),
                "boundary_iou": _percent(single, "boundary_iou"),
                "pixel_accuracy": _percent(single, "pixel_accuracy"),
                "ms_mean_iou": _percent(multi, "mean_iou"),
                "iterations": entry.get("iterations"), "entry": entry,
            })
            releases[-1].update(works_on=model_cards.works_on(releases[-1]),
                                card=model_cards.model_card(releases[-1]))
    return releases


def _known(releases, root):
    return ", ".join(releases) or f"none (no manifest under {root})"


def _release(name, root):
    releases = {release["name"]: release for release in list_released(root)}
    if name in releases:
        return releases[name]
    known = _known(releases, root)
    matches = [known_name for known_name in releases if known_name.endswith(f"/{name}")]
    hint = f"did you mean {' or '.join(matches)}? " if matches else ""
    raise CheckpointError(
        f"{name!r} is neither a checkpoint file nor a released model; {hint}"
        f"released models: {known}")


def _require_checkpoint_file(path, root):
    """Refuse a file that is no checkpoint (a text file, an image) by name,
    before torch.load fails on it with a message about its own internals.
    torch.save has written zip archives since PyTorch 1.6."""
    if path.is_file() and not zipfile.is_zipfile(path):
        releases = [release["name"] for release in list_released(root)]
        raise CheckpointError(
            f"cannot read checkpoint {path}: it is not a checkpoint (not the zip archive "
            "torch.save writes) nor a released model's name; give a .pt file written by "
            f"ainnoseg train or publish, or a released model: {_known(releases, root)}")


def _check_sha256(release):
    path, expected = release["path"], release["entry"].get("sha256")
    if not path.is_file():
        raise CheckpointError(f"the released file {path} of {release['name']} is missing; "
                              "restore it from the repository (git checkout -- assets)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if expected and digest != expected:
        raise CheckpointError(
            f"{path} does not match its manifest's sha256 (the file changed since it was "
            "published); restore it from the repository or publish it again")


def load(name_or_path, device="cpu", root=RELEASES_DIR):
    """A model in eval mode, ready for `segment_image`, from a released name or a file.

    Args:
        name_or_path: a released name such as "camvid/ainnoseg_w18s" or
            "synthetic/hrnetv2_w18s" (`list_released()` lists them), or the
            path of any checkpoint `ainnoseg train` or `publish` wrote.
        device: where the model's weights go ("cpu", "cuda", ...).
        root: the folder of released datasets' manifests.
    Returns:
        the model (float32 weights), with `model.meta` a `ModelMeta`: its
        name, class names, palette, training config and release entry.
    Raises:
        CheckpointError: an unknown name or a file that is no checkpoint
            (the message lists the released models), a missing or unreadable
            file, or a release whose file no longer matches its manifest.
    """
    path = Path(name_or_path)
    release = None
    if not path.is_file() and path.suffix != ".pt":
        release = _release(str(name_or_path), root)
        _check_sha256(release)
        path = release["path"]
    _require_checkpoint_file(path, root)
    model, state = load_model(path)
    model.meta = _meta(state, path, release)
    return model.to(torch.device(device)).eval()


def _meta(state, path, release):
    from ..data import default_palette, palette_of

    class_names = list(state["class_names"])
    palette = (palette_of(class_names) or state.get("palette")
               or default_palette(len(class_names)))
    return ModelMeta(name=release["name"] if release else str(path), class_names=class_names,
                     palette=[tuple(color) for color in palette], config=dict(state["config"]),
                     checkpoint_path=Path(path), release=release["entry"] if release else None)
