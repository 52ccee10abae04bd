"""What a user takes away from a prediction: the label map as a PNG of class
indices (as `ainnoseg predict` writes it, read back by
`ainnoseg.data.read_mask`), the overlay as a PNG, and per-image scores as CSV.

    labels = ainnoseg.segment_image(model, "frame.png")
    Path("frame_labels.png").write_bytes(downloads.label_png(labels))
    Path("scores.csv").write_text(downloads.metrics_csv(rows))
"""

import csv
import io
import re
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from ..files import atomic_write


def label_png(labels, text=None):
    """PNG bytes of an (H, W) label map, one grey level per class index
    (0-255: 255 is the ignore index); `text` (key, value) becomes a PNG text
    chunk. ValueError for labels outside 0-255."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"a label map is (H, W); got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"labels {labels.min()}-{labels.max()} do not fit a PNG of class "
                         "indices (0-255)")
    info = None
    if text is not None:
        info = PngInfo()
        info.add_text(*text)
    buffer = io.BytesIO()
    Image.fromarray(labels.astype(np.uint8), mode="L").save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def picture_png(picture, text=None):
    """PNG bytes of a uint8 (H, W, 3) picture (an overlay, an error map)."""
    picture = np.asarray(picture)
    if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:
        raise ValueError(f"a picture is uint8 (H, W, 3); got {picture.dtype} {picture.shape}")
    info = None
    if text is not None:
        info = PngInfo()
        info.add_text(*text)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def metrics_csv(rows):
    """CSV text of score rows (dicts): the columns in the order they first
    appear, an empty cell for a missing or None value."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows([{key: "" if value is None else value for key, value in row.items()}
                      for row in rows])
    return text.getvalue()


def file_stem(name):
    """`name` as a file-name stem: letters, digits, '.', '_' and '-' kept,
    runs of anything else one '_'; "image" when nothing is left."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(name)).stem).strip("._")
    return stem or "image"


def write_files(folder, files):
    """Write {file name: bytes or text} into `folder` (made if needed), each
    atomically; returns their paths in order."""
    folder = Path(folder)
    paths = []
    for name, data in files.items():
        data = data.encode() if isinstance(data, str) else data
        path = folder / name
        atomic_write(path, lambda handle, data=data: handle.write(data))
        paths.append(path)
    return paths
