"""Procedural street scenes: the embedded default dataset, needing no files.

The classes and palette follow the 11-class CamVid split (same ids), so a model
or a dashboard can move between the synthetic scenes and CamVid unchanged.
"""

import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision import tv_tensors

from .io import IGNORE_INDEX
from .palettes import CAMVID_PALETTE
from .synthetic_texture import (
    BRICK, FRONTAL, GROUND, LEAVES, PLAIN, SIDE, SKYGRAD, TILES, WINDOWS, render)

CLASS_NAMES = ["sky", "building", "pole", "road", "sidewalk", "tree",
               "sign", "fence", "car", "person", "bicyclist"]
PALETTE = CAMVID_PALETTE
SKY, BUILDING, POLE, ROAD, SIDEWALK, TREE, SIGN, FENCE, CAR, PERSON, BICYCLIST = range(11)
_SPLITS = {"train": (0, 400), "val": (1, 100), "test": (2, 100)}  # name: (seed stream, length)

# Base colours. Greys, reds and greens recur across classes on purpose, so that
# colour alone does not give the class and texture and context have to.
_COLORS = {
    SKY: [(110, 160, 215), (165, 190, 225), (175, 180, 185), (200, 200, 195)],
    BUILDING: [(150, 70, 55), (190, 170, 140), (130, 130, 130), (160, 155, 150),
               (90, 85, 90), (210, 205, 200), (200, 180, 110)],
    ROAD: [(80, 80, 85), (100, 100, 100), (115, 110, 105), (70, 72, 70)],
    SIDEWALK: [(140, 140, 135), (150, 110, 100), (170, 160, 140), (120, 120, 125)],
    TREE: [(60, 100, 40), (80, 110, 50), (45, 75, 40), (110, 120, 60), (140, 120, 50)],
    POLE: [(90, 90, 90), (150, 150, 155), (50, 70, 55), (40, 40, 40)],
    SIGN: [(200, 30, 30), (30, 70, 180), (230, 190, 40), (230, 230, 230), (30, 130, 60)],
    FENCE: [(130, 95, 60), (120, 120, 125), (60, 90, 60), (210, 210, 205)],
    CAR: [(220, 220, 220), (30, 30, 35), (160, 160, 165), (110, 110, 115),
          (170, 30, 30), (40, 60, 140), (40, 80, 50), (210, 180, 40)],
    PERSON: [(40, 40, 50), (150, 30, 40), (50, 70, 130), (200, 200, 190),
             (90, 110, 60), (120, 90, 70), (190, 120, 40)],
}
_SKIN = [(235, 200, 170), (200, 150, 110), (140, 95, 65), (90, 60, 45)]
_TYRE, _GLASS, _WHITE = (25, 25, 28), (45, 55, 70), (225, 225, 220)



def _jitter(rng, color, amount=12.0):
    shifts = rng.uniform(-amount, amount, 3)
    return tuple(min(255.0, max(0.0, c + d)) for c, d in zip(color, shifts))


def _pick(rng, colors):
    return _jitter(rng, colors[rng.integers(len(colors))])


class _Scene:
    """A pinhole camera over a flat ground plus an instance canvas.

    Every drawn part gets a new id on the canvas, so later parts hide earlier
    ones (painter's order) and the class and texture of every visible pixel are
    known exactly. World units are metres: X right, Y up, z forward.
    """

    def __init__(self, rng, height, width):
        self.rng, self.h, self.w = rng, height, width
        self.f = width * rng.uniform(0.8, 1.0)
        self.cam_h = rng.uniform(1.3, 1.8)
        self.horizon = height * rng.uniform(0.36, 0.5)
        self.vx = width * (0.5 + rng.uniform(-0.12, 0.12))
        self.cam_x = 0.0  # lateral camera position, set once the road is known
        self.canvas = Image.new("I", (width, height), 0)
        self.draw = ImageDraw.Draw(self.canvas)
        self.parts = []  # (class, (r, g, b), noise amplitude, pattern, plane, plane depth)

    def part(self, cls, color, amp=0.06, pattern=PLAIN, plane=FRONTAL, depth=1.0):
        """Register a part and return its id, the value to draw it with."""
        self.parts.append((cls, color, amp, pattern, plane, depth))
        return len(self.parts) - 1

    def xy(self, X, Y, z):
        z = max(z, 0.3)
        return self.vx + self.f * (X - self.cam_x) / z, self.horizon + self.f * (self.cam_h - Y) / z

    def px(self, size, z):
        """Pixels covered by `size` metres at depth z, at least one."""
        return max(1, int(round(self.f * size / max(z, 0.3))))

    def poly(self, pid, points):
        self.draw.polygon([self.xy(*p) for p in points], fill=pid)

    def ground(self, pid, X0, X1, z0, z1):
        """A rectangle lying on the ground."""
        self.poly(pid, [(X0, 0, z0), (X1, 0, z0), (X1, 0, z1), (X0, 0, z1)])

    def box(self, pid, X0, X1, Y0, Y1, z):
        """Axis-aligned box facing the camera; never thinner than one pixel."""
        (xa, ya), (xb, yb) = self.xy(X0, Y1, z), self.xy(X1, Y0, z)
        x0, y0 = int(round(xa)), int(round(ya))
        self.draw.rectangle([x0, y0, max(x0, int(round(xb)) - 1), max(y0, int(round(yb)) - 1)],
                            fill=pid)

    def ellipse(self, pid, X, Y, rx, ry, z, outline=0):
        (cx, cy), sx, sy = self.xy(X, Y, z), self.f * rx / z, self.f * ry / z
        shape = [cx - sx, cy - sy, max(cx - sx, cx + sx), max(cy - sy, cy + sy)]
        if outline:
            self.draw.ellipse(shape, outline=pid, width=outline)
        else:
            self.draw.ellipse(shape, fill=pid)

    def line(self, pid, a, b, width):
        self.draw.line([self.xy(*a), self.xy(*b)], fill=pid, width=width)


def _sky_and_skyline(sc):
    """Sky, then hazy far buildings and trees standing on the horizon."""
    rng, h, w = sc.rng, sc.h, sc.w
    sky = _pick(rng, _COLORS[SKY])
    sc.draw.rectangle([0, 0, w, h], fill=sc.part(SKY, sky, 0.02, SKYGRAD))
    for _ in range(rng.integers(4, 12)):
        x, y = rng.uniform(-0.1, 1.0) * w, sc.horizon + 1
        if rng.random() < 0.7:
            hazy = tuple((a + b) / 2 for a, b in zip(_pick(rng, _COLORS[BUILDING]), sky))
            pid = sc.part(BUILDING, hazy, 0.05, WINDOWS, FRONTAL, rng.uniform(150, 300))
            top, right = y - rng.uniform(4, 0.3 * h), x + rng.uniform(4, w / 5)
            sc.draw.rectangle([x, top, right, y], fill=pid)
        else:
            r = rng.uniform(2, 10)
            pid = sc.part(TREE, _pick(rng, _COLORS[TREE]), 0.2, LEAVES)
            sc.draw.ellipse([x, y - 2 * r, x + 3 * r, y], fill=pid)


def _street(sc, road_w):
    """Sidewalk to the horizon, the road, lane dashes and sometimes a crossing."""
    rng = sc.rng
    ground = sc.part(SIDEWALK, _pick(rng, _COLORS[SIDEWALK]), 0.08, TILES, GROUND)
    sc.draw.rectangle([0, int(sc.horizon) + 1, sc.w, sc.h], fill=ground)
    road = sc.part(ROAD, _pick(rng, _COLORS[ROAD]), 0.15, PLAIN, GROUND)
    sc.ground(road, -road_w, road_w, 0.3, 1000)
    paint = sc.part(ROAD, _jitter(rng, _WHITE, 20), 0.1)  # markings are road too
    for z in np.arange(1 + rng.uniform(0, 9), 90, 9.0):
        sc.ground(paint, -0.08, 0.08, z, z + 3)
    if rng.random() < 0.35:
        z = rng.uniform(6, 30)
        for X in np.arange(-road_w + 0.5, road_w - 0.4, 1.0):
            sc.ground(paint, X, X + 0.5, z, z + 3)


def _facades(sc, side_x):
    """Building fronts along one side of the street, with alleys between some."""
    rng, z = sc.rng, sc.rng.uniform(0.3, 6)
    while z < 150:
        length, height = rng.uniform(8, 30), rng.uniform(5, 25)
        pattern = BRICK if rng.random() < 0.35 else WINDOWS
        color = _pick(rng, _COLORS[BUILDING])
        pid = sc.part(BUILDING, color, 0.06, pattern, SIDE, side_x - sc.cam_x)
        sc.poly(pid, [(side_x, 0, z), (side_x, height, z),
                      (side_x, height, z + length), (side_x, 0, z + length)])
        z += length + (rng.uniform(3, 10) if rng.random() < 0.25 else 0)


def _car(sc, X, z):
    """A car seen from behind or the front, with its inner side, windows and wheels."""
    rng = sc.rng
    length = rng.uniform(3.8, 4.8)
    body = sc.part(CAR, _pick(rng, _COLORS[CAR]), 0.04)
    glass = sc.part(CAR, _jitter(rng, _GLASS), 0.05)
    tyre = sc.part(CAR, _TYRE, 0.05)
    right = X > sc.cam_x
    side = X - 0.9 if right else X + 0.9  # the side that faces the camera's axis
    inner = side - 0.12 if right else side + 0.12
    z1 = z + length
    sc.poly(body, [(side, 0.25, z), (side, 0.8, z), (side, 0.8, z1), (side, 0.25, z1)])
    sc.poly(glass, [(inner, 0.8, z + 0.8), (inner, 1.4, z + 1.3),
                    (inner, 1.4, z1 - 1.5), (inner, 0.8, z1 - 0.9)])
    for wz in (z + 0.8, z1 - 0.8):
        sc.ellipse(tyre, side, 0.33, 0.05, 0.33, wz)
    sc.box(tyre, X - 0.85, X - 0.55, 0.0, 0.4, z)
    sc.box(tyre, X + 0.55, X + 0.85, 0.0, 0.4, z)
    sc.box(body, X - 0.9, X + 0.9, 0.25, 0.8, z)
    sc.poly(body, [(X - 0.85, 0.8, z + 0.6), (X + 0.85, 0.8, z + 0.6),
                   (X + 0.7, 1.45, z + 0.9), (X - 0.7, 1.45, z + 0.9)])
    sc.poly(glass, [(X - 0.7, 0.88, z + 0.62), (X + 0.7, 0.88, z + 0.62),
                    (X + 0.6, 1.35, z + 0.85), (X - 0.6, 1.35, z + 0.85)])
    # Right of the centre line cars drive away (tail lights); oncoming ones show headlights.
    light = sc.part(CAR, (200, 30, 25) if X > 0 else (235, 225, 180), 0.05)
    sc.box(light, X - 0.85, X - 0.6, 0.55, 0.68, z)
    sc.box(light, X + 0.6, X + 0.85, 0.55, 0.68, z)


def _person(sc, X, z, cls=PERSON, base=0.0, sitting=False):
    """A pedestrian (or, with `sitting`, a rider whose feet reach `base`)."""
    rng, tall = sc.rng, sc.rng.uniform(1.55, 1.9)
    legs = sc.part(cls, _pick(rng, _COLORS[PERSON]), 0.06)
    shirt = sc.part(cls, _pick(rng, _COLORS[PERSON]), 0.06)
    skin = sc.part(cls, _pick(rng, _SKIN), 0.04)
    hip = base + (0.75 if sitting else 0.85) * tall / 1.75
    stride = 0.0 if sitting else rng.uniform(0, 0.18)
    sc.line(legs, (X - stride, base, z), (X - 0.05, hip, z), sc.px(0.14, z))
    sc.line(legs, (X + stride, base, z), (X + 0.05, hip, z), sc.px(0.14, z))
    sc.box(shirt, X - 0.22, X + 0.22, hip - 0.05, hip + 0.6 * tall / 1.75, z)
    sc.line(shirt, (X - 0.22, hip + 0.55, z), (X - 0.28, hip + 0.05, z), sc.px(0.09, z))
    sc.line(shirt, (X + 0.22, hip + 0.55, z), (X + 0.3, hip + 0.1, z), sc.px(0.09, z))
    sc.ellipse(skin, X, hip + 0.75 * tall / 1.75, 0.1, 0.12, z)


def _bicyclist(sc, X, z):
    """A rider on a bicycle seen from the side: open wheels, thin frame."""
    rng = sc.rng
    tyre = sc.part(BICYCLIST, _TYRE, 0.05)
    frame = sc.part(BICYCLIST, _pick(rng, _COLORS[CAR]), 0.05)
    rim = sc.px(0.05, z)
    for dx in (-0.55, 0.55):
        sc.ellipse(tyre, X + dx, 0.34, 0.34, 0.34, z, outline=rim)
    wide = sc.px(0.04, z)
    for a, b in [((-0.55, 0.34), (-0.05, 0.75)), ((-0.05, 0.75), (0.45, 0.8)),
                 ((0.45, 0.8), (0.55, 0.34)), ((-0.55, 0.34), (0.05, 0.34)),
                 ((0.05, 0.34), (-0.05, 0.75)), ((0.05, 0.34), (0.45, 0.8))]:
        sc.line(frame, (X + a[0], a[1], z), (X + b[0], b[1], z), wide)
    _person(sc, X - 0.05, z - 0.01, BICYCLIST, base=0.3, sitting=True)


def _pole(sc, X, z):
    """A pole 1 px wide far away, optionally carrying a sign, light or lamp arm."""
    rng, height = sc.rng, sc.rng.uniform(3.5, 9)
    pole = sc.part(POLE, _pick(rng, _COLORS[POLE]), 0.08)
    width = rng.uniform(0.08, 0.25)
    sc.box(pole, X - width / 2, X + width / 2, 0, height, z)
    toward_road = -np.sign(X)  # the road's centre line is X = 0
    if rng.random() < 0.3:  # lamp arm over the street
        sc.line(pole, (X, height, z), (X + toward_road * 1.5, height + 0.2, z), sc.px(0.1, z))
    kind = rng.random()
    if kind < 0.55:
        y = rng.uniform(min(2.2, height - 0.5), height - 0.4)
        size = rng.uniform(0.3, 0.45)
        plate = sc.part(SIGN, _pick(rng, _COLORS[SIGN]), 0.03)
        if rng.random() < 0.5:
            sc.ellipse(plate, X, y, size, size, z - 0.02)
        else:
            sc.box(plate, X - size, X + size, y - size, y + size, z - 0.02)
        inner = sc.part(SIGN, _jitter(rng, _WHITE), 0.03)
        sc.ellipse(inner, X, y, size * 0.55, size * 0.55, z - 0.03)
    elif kind < 0.75:  # traffic light: a dark box with one lit lamp
        y = height - 0.9
        sc.box(sc.part(SIGN, (30, 30, 30), 0.05), X - 0.18, X + 0.18, y - 0.45, y + 0.45, z - 0.02)
        lit = [(230, 40, 30), (240, 190, 40), (60, 220, 90)][rng.integers(3)]
        sc.ellipse(sc.part(SIGN, lit, 0.02), X, y + 0.3 * (1 - rng.integers(3)), 0.1, 0.1, z - 0.03)


def _tree(sc, X, z):
    """A trunk and a crown of overlapping ellipses with a foliage texture."""
    rng = sc.rng
    sc.box(sc.part(TREE, _jitter(rng, (90, 65, 45)), 0.1), X - 0.13, X + 0.13, 0, 2.6, z)
    crown = sc.part(TREE, _pick(rng, _COLORS[TREE]), 0.25, LEAVES)
    top = rng.uniform(3.5, 5.5)
    for _ in range(rng.integers(3, 7)):
        r = rng.uniform(0.9, 2.0)
        sc.ellipse(crown, X + rng.uniform(-1.2, 1.2), top + rng.uniform(-1, 1), r, r * 0.9, z)


def _fence(sc, X, z):
    """Pickets with gaps and two rails: a thin structure with scenery behind it."""
    rng, length = sc.rng, sc.rng.uniform(6, 25)
    pid = sc.part(FENCE, _pick(rng, _COLORS[FENCE]), 0.12)
    high, gap = rng.uniform(0.9, 1.4), rng.uniform(0.15, 0.5)
    for zz in np.arange(z + length, z, -gap):
        sc.box(pid, X - 0.03, X + 0.03, 0, high, zz)
    for y in (0.25, high - 0.1):
        sc.line(pid, (X, y, z), (X, y, z + length), sc.px(0.06, z + length / 2))


def _void(sc, X, z):
    """Unlabelled street furniture (bins, boxes): ignore_index in the mask."""
    rng = sc.rng
    width, height = rng.uniform(0.3, 0.8), rng.uniform(0.5, 1.2)
    sc.box(sc.part(IGNORE_INDEX, _pick(rng, _COLORS[PERSON]), 0.08),
           X - width / 2, X + width / 2, 0, height, z)


def _objects(sc, road_w, left_b, right_b):
    """Place street objects and draw them far to near, so nearer ones occlude."""
    rng, items = sc.rng, []

    def curb(side, lo, hi):  # a lateral position on one sidewalk
        inner, outer = road_w, (left_b if side < 0 else right_b)
        return side * rng.uniform(inner + lo * (outer - inner), inner + hi * (outer - inner))

    cars = []  # (lane, z), kept apart so no two cars interpenetrate
    for _ in range(rng.integers(2, 11)):
        lane = (-0.5, 0.5, -0.85, 0.85)[rng.integers(4)] * road_w  # two lanes, parked cars
        z = rng.uniform(4, 100)
        if all(other != lane or abs(z - other_z) > 6 for other, other_z in cars):
            cars.append((lane, z))
    items += [(z, _car, lane) for lane, z in cars]
    for _ in range(rng.integers(2, 13)):
        on_road = rng.random() < 0.2
        X = rng.uniform(-road_w, road_w) if on_road else curb(rng.choice([-1, 1]), 0.1, 0.9)
        items.append((rng.uniform(3, 110), _person, X))
    for _ in range(rng.integers(0, 3)):
        items.append((rng.uniform(5, 80), _bicyclist, rng.choice([-1, 1]) * (road_w - 0.6)))
    for _ in range(rng.integers(3, 10)):
        items.append((rng.uniform(3, 100), _pole, curb(rng.choice([-1, 1]), 0.05, 0.25)))
    for _ in range(rng.integers(0, 7)):
        items.append((rng.uniform(5, 90), _tree, curb(rng.choice([-1, 1]), 0.6, 0.85)))
    for _ in range(rng.integers(0, 3)):
        items.append((rng.uniform(3, 40), _fence, curb(rng.choice([-1, 1]), 0.92, 0.97)))
    for _ in range(rng.integers(0, 3)):
        items.append((rng.uniform(4, 60), _void, curb(rng.choice([-1, 1]), 0.3, 0.8)))
    for z, draw, X in sorted(items, key=lambda item: -item[0]):
        draw(sc, float(X), float(z))


def _build_scene(rng, height, width):
    """Lay out a street (camera, road and sidewalk widths) and draw everything in it."""
    sc = _Scene(rng, height, width)
    road_w = rng.uniform(2.8, 5)
    sc.cam_x = rng.uniform(-0.5, 0.5) * road_w
    left_b, right_b = road_w + rng.uniform(2, 5), road_w + rng.uniform(2, 5)
    _sky_and_skyline(sc)
    _street(sc, road_w)
    for side_x in (-left_b, right_b):
        _facades(sc, side_x)
    _objects(sc, road_w, left_b, right_b)
    return sc


class SyntheticScenes(torch.utils.data.Dataset):
    """Procedural street scenes in CamVid's 11 classes: the embedded default dataset.

    Every sample is drawn from `numpy.random.default_rng([seed, split, index])`,
    so it is the same on every machine and run, and the splits never share a scene.

    How a scene is made: a pinhole camera at a random height, focal length and
    horizon looks down a straight street. Painted far to near, each part onto
    an instance canvas (so the mask is exactly what stays visible):
    sky; a hazy skyline; sidewalk and road with lane dashes and crossings;
    building fronts in perspective with alleys; then cars, pedestrians,
    bicyclists, poles (1 px wide when far) with signs and traffic lights,
    trees, fences (pickets with gaps) and unlabelled street furniture, sorted by
    depth so nearer objects occlude farther ones and grow towards the bottom.
    Textures are computed in each surface's world coordinates (bricks, windows,
    paving tiles, foliage, clouds, asphalt grain); base colours overlap across
    classes (grey cars, roads, poles and buildings). A random gain, colour cast,
    smooth illumination field and pixel noise finish the image. Street
    furniture is labelled `ignore_index` (a small share of pixels).

    Args:
        split: "train" (400 scenes by default), "val" (100) or "test" (100).
        size: (height, width) of every sample, at least 64 x 64.
        length: number of scenes; defaults to the split's size.
        seed: non-negative integer; another seed gives another set of scenes.
        transforms: optional callable (image, mask) -> (image, mask), applied
            last, e.g. from `ainnoseg.data.transforms`.

    Returns per index: (image, mask), a `tv_tensors.Image` uint8 (3, H, W) and a
    `tv_tensors.Mask` uint8 (H, W) with class ids or 255.
    """

    class_names = CLASS_NAMES
    palette = PALETTE
    ignore_index = IGNORE_INDEX
    num_classes = len(CLASS_NAMES)

    def __init__(self, split="train", size=(256, 320), length=None, seed=0, transforms=None):
        if split not in _SPLITS:
            raise ValueError(f"unknown split {split!r}; use one of {sorted(_SPLITS)}")
        if not isinstance(size, (tuple, list)) or len(size) != 2 or min(size) < 64:
            raise ValueError(f"size must be (height, width) of at least 64 x 64, got {size!r}")
        if length is not None and (int(length) != length or length < 0):
            raise ValueError(f"length must be a non-negative integer or None, got {length!r}")
        if int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.split, self.seed = split, int(seed)
        self.size = (int(size[0]), int(size[1]))
        stream, default_length = _SPLITS[split]
        self._stream = stream
        self.length = default_length if length is None else int(length)
        self.transforms = transforms

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} is out of range for {self.length} {self.split} scenes")
        index %= self.length
        rng = np.random.default_rng([self.seed, self._stream, index])
        image, mask = render(_build_scene(rng, *self.size))
        image = tv_tensors.Image(torch.from_numpy(image))
        mask = tv_tensors.Mask(torch.from_numpy(mask))
        if self.transforms is not None:
            image, mask = self.transforms(image, mask)
        return image, mask

