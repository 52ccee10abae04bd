"""PNG files that claim a huge size in their header but hold almost no data:
a decompression bomb's header, cheap to write. Nothing may decode them: PIL
would fill the missing rows and allocate every pixel of the claimed size."""

import struct
import zlib
from pathlib import Path


def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def huge_png_bytes(width, height):
    """A 1-bit grayscale PNG header for width x height pixels, and one empty row."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(b"\0" * (1 + (width + 7) // 8)))
            + _chunk(b"IEND", b""))


def write_huge_png(path, width, height):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(huge_png_bytes(width, height))
    return path
