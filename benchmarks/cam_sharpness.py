"""How sharp DANet's channel attention (CAM) gets as the image grows.

CAM's energy is a sum over all positions, so its softmax sharpens with the
image size: a model trained on crops sees peakier channel attention on whole
frames, and peakier still at the large scales of multi-scale inference. For
one image at a training crop's size, as it is, and rescaled, this prints the
positions CAM sums over and how peaked its attention rows are (the mean of
each row's largest weight, and the mean row entropy against a flat row's).

    python benchmarks/cam_sharpness.py [--model camvid/ainnoseg_w18s] [--image FRAME.png]
        [--crop 256 320] [--scales 0.5 1.0 2.0]

The default image is the first CamVid val frame when the dataset is beside
the clone (../shared/datasets/camvid), else a bundled synthetic scene.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import ainnoseg
from ainnoseg.analysis.inside import attention_sharpness, look_inside
from ainnoseg.data.examples import bundled_examples, find_camvid
from ainnoseg.engine.publish import processor_name


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="camvid/ainnoseg_w18s")
    parser.add_argument("--image", help="default: a CamVid val frame, else a bundled scene")
    parser.add_argument("--crop", type=int, nargs=2, default=(256, 320), metavar=("H", "W"),
                        help="the training crop (default CamVid's 256 320)")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def default_image():
    camvid = find_camvid()
    if camvid is not None:
        return sorted((Path(camvid) / "val").glob("*.png"))[0]
    return bundled_examples()[0]["image"]


def views(image, crop, scales):
    """(name, uint8 array) of the image cut to the crop, then at each scale."""
    height, width = image.shape[:2]
    yield f"training crop {crop[0]}x{crop[1]}", image[:crop[0], :crop[1]]
    for scale in scales:
        size = (round(width * scale), round(height * scale))
        resized = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
        yield f"image x{scale:g} ({size[1]}x{size[0]})", resized


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    model = ainnoseg.load(args.model)
    path = args.image or default_image()
    image = np.asarray(Image.open(path).convert("RGB"))
    print(f"{args.model} on {path}; {processor_name()}, {args.threads} threads, float32")
    print(f"{'view':32} {'positions':>9} {'max weight':>10} {'entropy':>8} {'flat':>6}")
    for name, view in views(image, args.crop, args.scales):
        inside = look_inside(model, view)
        if inside.channel_attention is None:
            sys.exit(f"{args.model} has no channel attention")
        sharpness = attention_sharpness(inside.channel_attention)
        positions = inside.position_input.shape[1] * inside.position_input.shape[2]
        print(f"{name:32} {positions:9d} {sharpness['max']:10.3f} {sharpness['entropy']:8.2f} "
              f"{sharpness['uniform_entropy']:6.2f}")
    print("(max weight: each CAM row's largest weight, averaged; entropy in nats)")


if __name__ == "__main__":
    main()
