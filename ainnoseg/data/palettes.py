"""Class colours that stay apart over an image: CamVid's (also the synthetic
scenes'), a default for datasets without a palette, and the check they pass.

    separation(CAMVID_PALETTE)     # (smallest distance, class i, class j) of the blended colours
    default_palette(5)             # five colours for a dataset's five classes

The overlays blend each class colour over the image at an opacity of 0.5, so
two colours are compared as they look blended at 0.5 over mid-grey, in CIE
Lab. Lightness differences count half (CIE94's kL = 2 for textured surfaces):
an image's own light and shade under the overlay hides a lighter or darker
version of a colour, as it hid SegNet's two olives (Tree and Pedestrian).
"""

import itertools

import numpy as np

OVERLAY_ALPHA = 0.5
MID_GREY = (128, 128, 128)
MIN_SEPARATION = 22.0  # the smallest distance `separation` accepts in a built-in palette

# SegNet's CamVid colours where they stay apart (Sky, Building, Road, Pavement,
# Tree, Bicyclist); Pole, SignSymbol, Fence, Car and Pedestrian are new, as
# SegNet's were too close to Sky, Road, Pavement and Tree once blended.
CAMVID_PALETTE = [(128, 128, 128), (128, 0, 0), (0, 255, 255), (128, 64, 128),
                  (60, 40, 222), (128, 128, 0), (255, 255, 0), (255, 128, 0),
                  (0, 0, 255), (255, 0, 0), (0, 128, 192)]

# Chosen one by one, each the farthest (by `separation`'s distance) from those
# before it among the colours with channels in 0, 64, 128, 192, 255 (black
# left out: a colour mask's black means "ignored"); every prefix passes
# MIN_SEPARATION.
DISTINCT_COLORS = [(128, 0, 0), (0, 255, 0), (0, 0, 255), (0, 255, 255), (255, 192, 0),
                   (255, 0, 192), (64, 128, 255), (255, 255, 192), (0, 128, 0),
                   (192, 255, 0), (255, 0, 0), (0, 64, 64), (255, 192, 255), (192, 0, 255),
                   (192, 64, 192), (64, 192, 255), (128, 128, 0), (0, 64, 255)]


def default_palette(num_classes):
    """Colours for classes without a published palette: `DISTINCT_COLORS` for
    up to 18 classes, PASCAL VOC's scheme beyond (ADE20K's 150)."""
    if num_classes <= len(DISTINCT_COLORS):
        return list(DISTINCT_COLORS[:num_classes])
    palette = []
    for index in range(num_classes):
        red = green = blue = 0
        value = index + 1
        for shift in range(7, -1, -1):
            red |= ((value >> 0) & 1) << shift
            green |= ((value >> 1) & 1) << shift
            blue |= ((value >> 2) & 1) << shift
            value >>= 3
        palette.append((red, green, blue))
    return palette


def _lab(rgb):
    """CIE Lab (D65) of sRGB uint8 colours, shape (..., 3)."""
    linear = np.asarray(rgb, np.float64) / 255
    linear = np.where(linear > 0.04045, ((linear + 0.055) / 1.055) ** 2.4, linear / 12.92)
    to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                       [0.0193, 0.1192, 0.9505]])
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def blended_distances(palette, alpha=OVERLAY_ALPHA, background=MID_GREY):
    """(K, K) distances between the K colours of `palette` once blended with
    weight `alpha` over `background` (as `ainnoseg.viz.overlay` draws them):
    CIE Lab distances with lightness counted half."""
    colors = np.asarray(palette, np.float64)
    if colors.ndim != 2 or colors.shape[1] != 3:
        raise ValueError(f"palette must be a list of (r, g, b) colours, got shape {colors.shape}")
    blended = np.round((1 - alpha) * np.asarray(background, np.float64) + alpha * colors)
    lab = _lab(blended) * np.array([0.5, 1.0, 1.0])
    return np.linalg.norm(lab[:, None] - lab[None], axis=-1)


def separation(palette, alpha=OVERLAY_ALPHA, background=MID_GREY):
    """(distance, i, j): the two classes of `palette` whose blended colours
    (see `blended_distances`) are closest; (inf, None, None) for one colour."""
    distances = blended_distances(palette, alpha, background)
    pairs = itertools.combinations(range(len(distances)), 2)
    return min(((float(distances[i, j]), i, j) for i, j in pairs),
               default=(float("inf"), None, None))
