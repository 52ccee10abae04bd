"""The README figure script's PNG compaction (tests/notebook_figures.py)."""

import io

import numpy as np
from PIL import Image

from notebook_figures import compact_png


def png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_compact_png_keeps_the_picture_in_a_palette():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(60, 80, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    pixels[:10, :, 3] = 0  # a transparent band, as matplotlib leaves outside axes
    figure = Image.fromarray(pixels, "RGBA")

    compact = Image.open(io.BytesIO(compact_png(png_bytes(figure))))

    assert compact.mode == "P"
    assert compact.size == figure.size
    rgb = np.asarray(compact.convert("RGB")).astype(int)
    assert (rgb[:10] == 255).all(), "transparent pixels should turn white"
    error = np.abs(rgb[10:] - pixels[10:, :, :3].astype(int)).mean()
    assert error < 20, f"mean colour error {error:.1f} of 255"
