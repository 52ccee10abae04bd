import os
import stat

import pytest

from ainnoseg import files


def test_atomic_write_gives_the_permissions_open_would(tmp_path):
    """Not the temporary file's private 0o600: a published checkpoint must be
    readable by whoever may read the folder."""
    path = tmp_path / "weights.pt"
    files.atomic_write(path, lambda handle: handle.write(b"x"))
    with open(tmp_path / "plain", "wb"):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~files.UMASK


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "record.json"
    path.write_bytes(b"old")

    def fail(handle):
        handle.write(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        files.atomic_write(path, fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["record.json"]
