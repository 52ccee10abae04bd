"""The demo's model sets: one HRNet, DANet and AinnoSeg release per dataset,
found in the release manifests, and models loaded once and shared.

    store = ModelStore()        # the releases under assets/checkpoints
    store.sets()                # {"camvid": {"HRNet": "camvid/hrnetv2_w18s", ...}, ...}
    store.models("camvid")      # {"HRNet": model, "AinnoSeg": model}, loaded on first use

Sets are read from `list_released` on every call, so a newly published
release joins its set without a restart.
"""

import threading
from collections import OrderedDict
from pathlib import Path

from ..files import stamp
from .files import CheckpointError
from .released import RELEASES_DIR, list_released, load

# The three families the paper's Figure 7 compares, by registered model name.
FAMILIES = {"HRNet": "hrnetv2_", "DANet": "danet_", "AinnoSeg": "ainnoseg_"}
PREFERRED_SETS = ("synthetic", "camvid")  # the default is the first one released


def family_of(model_name):
    """"HRNet", "DANet" or "AinnoSeg" for a registered model name, else None."""
    for family, prefix in FAMILIES.items():
        if model_name.startswith(prefix):
            return family
    return None


def model_sets(releases):
    """{dataset: {family: release name}} from `list_released()` rows.

    A family's plain release (the manifest key is the model's name, e.g.
    "camvid/ainnoseg_w18s") is chosen over its variants (self-training
    rounds); without one, the first variant in manifest order. Families are
    in `FAMILIES` order; releases of other models (HRNet-OCR) are left out.
    """
    chosen = {}
    for release in releases:
        family = family_of(release["model"])
        if family is None:
            continue
        plain = release["name"].split("/", 1)[1] == release["model"]
        current = chosen.setdefault(release["dataset"], {}).get(family)
        if current is None or (plain and not current[1]):
            chosen[release["dataset"]][family] = (release["name"], plain)
    return {dataset: {family: families[family][0] for family in FAMILIES if family in families}
            for dataset, families in chosen.items()}


def default_set(sets):
    """The synthetic set once it is released, else CamVid, else the first; None if empty."""
    for name in PREFERRED_SETS:
        if name in sets:
            return name
    return next(iter(sorted(sets)), None)


def missing_note(name, families):
    """A sentence naming the families a set lacks, or "" when it has all three."""
    missing = [family for family in FAMILIES if family not in families]
    if not missing:
        return ""
    return (f"The {name} set has no {' or '.join(missing)} release yet, so it shows "
            f"{' and '.join(families) or 'no model'}.")


class ModelStore:
    """Models loaded once and shared by every caller (thread-safe).

    Args:
        root: the folder of released datasets' manifests (`ainnoseg.load`'s root).
        device: where the weights go.
        max_files: how many checkpoint files loaded by path (not releases) to
            keep; the least recently used is dropped beyond it.
    A file that changes on disk (same name, new modification time or size)
    is loaded again.
    """

    def __init__(self, root=RELEASES_DIR, device="cpu", max_files=2):
        self.root, self.device, self.max_files = Path(root), device, max_files
        self._releases, self._files = {}, OrderedDict()
        self._lock = threading.Lock()

    def sets(self):
        return model_sets(list_released(self.root))

    def members(self, set_name):
        """{family: release (a `list_released` row)} of the set `set_name`; {} if unknown."""
        releases = list_released(self.root)
        by_name = {release["name"]: release for release in releases}
        return {family: by_name[name]
                for family, name in model_sets(releases).get(set_name, {}).items()}

    def _load(self, cache, key, path, name_or_path):
        modified = stamp(path)
        with self._lock:
            if key not in cache or cache[key][0] != modified:
                cache[key] = (modified, load(name_or_path, self.device, root=self.root))
            if cache is self._files:
                cache.move_to_end(key)
                while len(cache) > self.max_files:
                    cache.popitem(last=False)
            return cache[key][1]

    def release(self, name):
        """The released model `name` ("camvid/hrnetv2_w18s")."""
        releases = {release["name"]: release for release in list_released(self.root)}
        if name not in releases:
            raise CheckpointError(f"no released model {name!r}; released: "
                                  f"{', '.join(releases) or 'none'}")
        return self._load(self._releases, name, releases[name]["path"], name)

    def file(self, path):
        """The model in the checkpoint file `path`."""
        path = Path(path).resolve()
        if not path.is_file():
            raise CheckpointError(f"no checkpoint at {path}")
        return self._load(self._files, str(path), path, path)

    def models(self, set_name):
        """{family: model} of the set `set_name`, in `FAMILIES` order."""
        sets = self.sets()
        if set_name not in sets:
            raise CheckpointError(f"there is no model set {set_name!r}; the released sets "
                                  f"are {', '.join(sets) or 'none'}")
        return {family: self.release(name) for family, name in sets[set_name].items()}
