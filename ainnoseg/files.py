"""Writing files so that a killed process never leaves half of one, JSON
without NaN (which JSON does not have), and a file's stamp for cache keys."""

import json
import math
import os
import tempfile
from pathlib import Path


def _read_umask():
    """The process's umask; read once, at import, because reading it means
    setting it for a moment, which other threads would see."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _read_umask()


def atomic_write(path, write):
    """Call write(binary handle) on a temporary file beside `path`, flush it to
    disk, then move it over `path`: a killed process leaves the old file or
    none, never half of one. The file gets the permissions `open` would give
    it (0o666 less the umask), not the temporary file's private 0o600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                             suffix=".tmp")
    try:
        os.chmod(descriptor, 0o666 & ~UMASK)
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def json_ready(value):
    """NaN and infinity -> None, inside dicts and lists too (an absent class's IoU)."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path, values):
    """`values` as indented JSON at `path`, atomically (a file written whole
    marks a finished step); NaN is written as null."""
    text = json.dumps(json_ready(values), indent=2, allow_nan=False)
    atomic_write(path, lambda handle: handle.write(text.encode()))


def stamp(path):
    """(modification time in ns, size) of a file or folder, None when there is
    none: part of a cache key, so a file written again is read again."""
    try:
        found = Path(path).stat()
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size
