"""Textures, lighting and noise of the synthetic scenes: from the instance
canvas of `synthetic._Scene` to an RGB image and its mask."""

import numpy as np
from PIL import Image

# Texture patterns; each part carries one, computed in its plane's world units.
PLAIN, SKYGRAD, BRICK, WINDOWS, TILES, LEAVES = range(6)
FRONTAL, SIDE, GROUND = range(3)  # planes: z = d, X = d, the ground


def _value_noise(rng, height, width, cells):
    """Smooth noise in [0, 1]: a coarse random grid upsampled bilinearly."""
    grid = rng.random((max(2, height // cells), max(2, width // cells)), dtype=np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((width, height), Image.BILINEAR))


def _plane_coords(sc, ys, xs, plane, depth):
    """World (u, v) on each pixel's plane and the metres one pixel spans there."""
    dx, dy = xs - sc.vx, ys - sc.horizon
    z = np.where(plane == FRONTAL, depth, 0.0)
    side = plane == SIDE
    z[side] = sc.f * np.abs(depth[side]) / np.maximum(np.abs(dx[side]), 0.5)
    ground = plane == GROUND
    z[ground] = sc.f * sc.cam_h / np.maximum(dy[ground], 0.5)
    u = np.where(side, z, dx * z / sc.f)
    v = np.where(ground, z, sc.cam_h - dy * z / sc.f)
    footprint = np.where(ground, z * z / (sc.f * sc.cam_h), z / sc.f)
    return u, v, footprint


def _hash(i, j):
    """A pseudo-random value in [0, 1) per integer cell, for per-brick/window variety."""
    return np.modf(np.abs(np.sin(i * 12.9898 + j * 78.233)) * 43758.5453)[0]


def _pattern(sc, kind, ys, xs, plane, depth, noise):
    """Multiplicative shading of one texture pattern at the given pixels."""
    if kind == SKYGRAD:
        clouds = np.clip((noise["coarse"][ys, xs] - 0.45) * 3, 0, 1)
        return 0.9 + 0.25 * ys / max(sc.horizon, 1) + 0.45 * clouds
    if kind == LEAVES:
        return 0.5 + 1.0 * noise["mid"][ys, xs] ** 1.5
    u, v, footprint = _plane_coords(sc, ys.astype(np.float32), xs.astype(np.float32), plane, depth)
    if kind == BRICK:
        row = np.floor(v / 0.3)
        col = np.floor(u / 0.9 + 0.5 * (row % 2))
        mortar = (np.modf(v / 0.3)[0] < 0.15) | (np.modf(u / 0.9 + 0.5 * (row % 2))[0] < 0.06)
        shade, period = np.where(mortar, 0.7, 0.9 + 0.2 * _hash(row, col)), 0.3
    elif kind == WINDOWS:
        fu, fv = np.modf(np.abs(u) / 3.0)[0], np.modf(v / 3.2)[0]
        window = (fu > 0.25) & (fu < 0.75) & (fv > 0.3) & (fv < 0.8) & (v > 0.5)
        lit = _hash(np.floor(u / 3.0), np.floor(v / 3.2))
        shade, period = np.where(window, 0.35 + 0.5 * (lit > 0.85), 1.0), 3.0
    else:  # TILES
        fu, fv = np.modf(np.abs(u) / 0.6)[0], np.modf(v / 0.6)[0]
        shade, period = np.where((fu < 0.08) | (fv < 0.08), 0.8, 1.0), 0.6
    fade = np.clip(1.2 - footprint / period, 0, 1)  # finer than a pixel: average out
    return 1 + (shade - 1) * fade + (1 - fade) * (np.mean(shade) - 1)


def render(sc):
    """Turn the instance canvas into a (3, H, W) image (textures, light, noise) and a mask."""
    rng, h, w = sc.rng, sc.h, sc.w
    ids = np.asarray(sc.canvas)
    cls, color, amp, pattern, plane, depth = (np.array(column) for column in zip(*sc.parts))
    noise = {"coarse": _value_noise(rng, h, w, 48), "mid": _value_noise(rng, h, w, 3)}
    fine = rng.random((h, w), dtype=np.float32) * 2 - 1
    shade = (1 + amp.astype(np.float32)[ids] * fine).ravel()
    kinds = pattern[ids].ravel()
    for kind in (SKYGRAD, BRICK, WINDOWS, TILES, LEAVES):
        pixels = np.flatnonzero(kinds == kind)  # flat indices: much faster than 2-D
        if pixels.size:
            ys, xs = np.divmod(pixels, w)
            part = ids.ravel()[pixels]
            shade[pixels] *= _pattern(sc, kind, ys, xs, plane[part], depth[part], noise)
    shade = shade.reshape(h, w)
    # Mild lighting: overall gain, a colour cast and a smooth illumination field.
    light = rng.uniform(0.75, 1.15) * (1 + 0.35 * (_value_noise(rng, h, w, 64) - 0.5))
    cast = (1 + rng.uniform(-0.06, 0.06, (3, 1, 1))).astype(np.float32)
    # Channels first: the layout torchvision wants, with no copy at the end.
    image = color.T.astype(np.float32)[:, ids] * (shade * light) * cast
    image += rng.random((3, h, w), dtype=np.float32) * rng.uniform(4, 14)
    image = np.clip(image, 0, 255, out=image).astype(np.uint8)
    return image, cls.astype(np.uint8)[ids]
