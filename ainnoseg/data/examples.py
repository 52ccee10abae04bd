"""Example images for the demo: synthetic scenes stored small under
`assets/examples/`, and CamVid val frames when a CamVid folder is at hand (no
dataset image is committed).

    write_examples()                       # regenerate assets/examples/
    list_examples(camvid=find_camvid())    # [{"name", "image", "mask", "source"}]
    source_of("synthetic_val_00003.png")   # "synthetic": which example an image is, if any

`python -m ainnoseg.data.examples` rewrites the bundled scenes. The folder has the
project's own-data layout (images/, masks/, classes.txt), so
`ainnoseg.data.build_dataset("assets/examples")` reads it too.
"""

import hashlib
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..files import atomic_write
from . import CamVid, SyntheticScenes

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = ROOT / "assets" / "examples"
CAMVID_DIR = ROOT.parent / "shared" / "datasets" / "camvid"  # the usual place beside a clone
EXAMPLE_SIZE = (192, 240)  # the synthetic zoo's training scale: small and fast on a CPU


def busiest_scenes(count, pool=40, split="val", size=EXAMPLE_SIZE):
    """Indices of the `count` scenes among the first `pool` of `split` that
    show the most classes (ties: the lower index), so that the examples have
    thin poles, signs and people as well as road and buildings."""
    scenes = SyntheticScenes(split, size=size, length=pool)
    classes = [len(np.setdiff1d(np.unique(scenes[i][1].numpy()), [scenes.ignore_index]))
               for i in range(pool)]
    order = sorted(range(pool), key=lambda index: (-classes[index], index))
    return sorted(order[:count])


def write_examples(folder=EXAMPLES_DIR, count=4, pool=40, split="val", size=EXAMPLE_SIZE):
    """Write `count` synthetic scenes (`busiest_scenes`) as PNGs with their masks.

    Layout: folder/images/synthetic_<split>_<index>.png, folder/masks/<same>.png
    (class indices, 255 ignored) and folder/classes.txt. Returns the image paths.
    """
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    scenes = SyntheticScenes(split, size=size, length=pool)
    (folder / "classes.txt").write_text("\n".join(scenes.class_names) + "\n")
    paths = []
    for index in busiest_scenes(count, pool, split, size):
        image, mask = scenes[index]
        name = f"synthetic_{split}_{index:05d}.png"
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / "images" / name,
                                                            optimize=True)
        Image.fromarray(mask.numpy()).save(folder / "masks" / name, optimize=True)
        paths.append(folder / "images" / name)
    return paths


def bundled_examples(folder=EXAMPLES_DIR):
    """The scenes `write_examples` stored: [{"name", "image", "mask", "source"}]."""
    images = sorted((Path(folder) / "images").glob("*.png"))
    return [{"name": path.stem, "image": path, "source": "synthetic",
             "mask": path.parent.parent / "masks" / path.name
             if (path.parent.parent / "masks" / path.name).is_file() else None}
            for path in images]


def _cache_folder(root):
    """A folder of converted masks for the CamVid copy at `root`, one per copy."""
    key = hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "ainnoseg-examples" / f"camvid-{key}"


def camvid_examples(root, count=6, cache=None):
    """`count` CamVid val frames spread over the split, with their labels.

    CamVid's label files mark void as 11; the masks given here mark it 255
    (the project's ignore index), written into `cache` (default a folder per
    CamVid copy in the system's temporary directory) when missing or older
    than their label file. Returns [] when `root` is None.
    """
    if root is None:
        return []
    dataset = CamVid(root, "val")
    cache = Path(cache or _cache_folder(root))
    step = max(1, len(dataset) // count)
    examples = []
    for index in range(0, len(dataset), step)[:count]:
        image_path, mask_path = dataset.pairs[index]
        mask_file = cache / Path(mask_path).name
        if not mask_file.is_file() or mask_file.stat().st_mtime < Path(mask_path).stat().st_mtime:
            mask = Image.fromarray(dataset.load(index)[1].numpy())
            atomic_write(mask_file, lambda handle: mask.save(handle, format="PNG"))
        examples.append({"name": f"camvid {Path(image_path).stem}", "image": Path(image_path),
                         "mask": mask_file, "source": "camvid"})
    return examples


def find_camvid(path=None):
    """The CamVid folder to take examples from: `path` when given (it must
    exist), else ../shared/datasets/camvid beside the repository if it is
    there, else None."""
    if path is not None:
        if not Path(path).is_dir():
            raise FileNotFoundError(f"no CamVid folder at {path}; give the folder that holds "
                                    "val/ and valannot/")
        return Path(path)
    return CAMVID_DIR if (CAMVID_DIR / "val").is_dir() else None


def list_examples(folder=EXAMPLES_DIR, camvid=None, camvid_count=6):
    """The bundled synthetic scenes, then CamVid val frames if `camvid` is a folder."""
    return bundled_examples(folder) + camvid_examples(camvid, camvid_count)


def source_of(name, folder=EXAMPLES_DIR, camvid=None):
    """The source ("synthetic", "camvid") of the example whose image file is
    named `name`, or None for any other image (an upload)."""
    for example in list_examples(folder, camvid):
        if Path(example["image"]).name == name:
            return example["source"]
    return None


if __name__ == "__main__":
    for written in write_examples():
        print(written)
