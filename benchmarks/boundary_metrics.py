"""The boundary metrics of one evaluated image, ours against the per-class
formulation, side by side in one run.

Ours (`ainnoseg.metrics`) finds every class's inner band at once from a
sliding maximum and minimum of the label map, and dilates the edges by a disk
as shifted row maxima. The per-class formulation here is the textbook one
(and this project's before): a one-hot mask per class, eroded by max-pooling
its complement, and edges dilated by a float convolution with a disk. Both
must give identical counts; the script checks that, then prints the
milliseconds of each per image, their ratio, and the forward pass of a model
at the same size for scale (what `ainnoseg eval` spends per image besides).

    python benchmarks/boundary_metrics.py [--data ../shared/datasets/camvid] [--images 10]
    python benchmarks/boundary_metrics.py --size 360 480 --classes 11   (random blocky maps)
"""

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

import ainnoseg
from ainnoseg import metrics
from ainnoseg.engine.publish import processor_name
from ainnoseg.inference.fast import optimize_for_inference


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="a labelled dataset folder: its val masks, each "
                                       "against itself shifted and with blocks relabelled")
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--size", type=int, nargs=2, default=(360, 480), metavar=("H", "W"),
                        help="random maps' size without --data (default: CamVid's)")
    parser.add_argument("--classes", type=int, default=11)
    parser.add_argument("--model", default="hrnetv2_w18s",
                        help="the model whose forward pass is timed beside")
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args()


# The per-class formulation.
def _one_hot(labels, num_classes, valid):
    classes = torch.arange(num_classes).view(-1, 1, 1)
    return (labels.unsqueeze(0) == classes) & valid


def _erode(masks, radius):
    outside = F.pad((~masks).float().unsqueeze(1), (radius,) * 4, value=1.0)
    size = 2 * radius + 1
    rows = F.max_pool2d(outside, (1, size), stride=1)
    return F.max_pool2d(rows, (size, 1), stride=1).squeeze(1) == 0


def _dilate_disk(masks, radius):
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    disk = (offsets.view(-1, 1) ** 2 + offsets.view(1, -1) ** 2 <= radius ** 2).float()
    return F.conv2d(masks.float().unsqueeze(1), disk[None, None], padding=radius).squeeze(1) > 0


def per_class_counts(pred, target, num_classes, ignore_index):
    """(Boundary IoU counts, boundary F-score counts) as `ainnoseg.metrics` defines them."""
    valid = target != ignore_index
    truth, predicted = _one_hot(target, num_classes, valid), _one_hot(pred, num_classes, valid)
    width = metrics.boundary_width(*target.shape)
    truth_band, predicted_band = truth & ~_erode(truth, width), predicted & ~_erode(predicted, width)
    biou = torch.stack([(truth_band & predicted_band).flatten(1).sum(1),
                        (truth_band | predicted_band).flatten(1).sum(1)], dim=1)
    tolerance = max(1, math.ceil(0.008 * math.hypot(*target.shape)))
    truth_edge, predicted_edge = truth & ~_erode(truth, 1), predicted & ~_erode(predicted, 1)
    edges = [predicted_edge & _dilate_disk(truth_edge, tolerance), predicted_edge,
             truth_edge & _dilate_disk(predicted_edge, tolerance), truth_edge]
    return biou, torch.stack([edge.flatten(1).sum(1) for edge in edges], dim=1)


def our_counts(pred, target, num_classes, ignore_index):
    return (metrics.boundary_iou_counts(pred, target, num_classes, ignore_index),
            metrics.boundary_fscore_counts(pred, target, num_classes, ignore_index))


def random_map(size, num_classes, generator):
    coarse = torch.randint(0, num_classes, (size[0] // 20 + 1, size[1] // 20 + 1),
                           generator=generator)
    return coarse.repeat_interleave(20, 0).repeat_interleave(20, 1)[:size[0], :size[1]]


def label_pairs(args):
    """(prediction, target, ignore index) pairs: a target, and as prediction the
    target shifted a few pixels with two blocks relabelled (boundaries that
    mostly agree, as a trained model's do)."""
    generator = torch.Generator().manual_seed(0)
    if args.data:
        dataset = ainnoseg.data.build_dataset(args.data, "val")
        targets = [torch.as_tensor(np.asarray(dataset[i][1])).long()
                   for i in range(min(args.images, len(dataset)))]
        ignore, num_classes = dataset.ignore_index, dataset.num_classes
    else:
        targets = [random_map(args.size, args.classes, generator) for _ in range(args.images)]
        ignore, num_classes = 255, args.classes
    pairs = []
    for target in targets:
        pred = torch.roll(target, shifts=(3, -2), dims=(0, 1)).clone()
        pred[pred == ignore] = 0
        height, width = target.shape
        pred[height // 4:height // 2, width // 4:width // 2] = 1
        pred[height // 2:, width // 2:width // 2 + 8] = num_classes - 1
        pairs.append((pred, target, ignore))
    return pairs, num_classes


def milliseconds(function, repeats):
    function()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return 1000 * best


def main():
    args = parse_args()
    pairs, num_classes = label_pairs(args)
    for pred, target, ignore in pairs:
        ours, theirs = our_counts(pred, target, num_classes, ignore), per_class_counts(
            pred, target, num_classes, ignore)
        if not all(torch.equal(a, b) for a, b in zip(ours, theirs)):
            raise SystemExit("the two formulations count differently: a bug")
    height, width = pairs[0][1].shape
    print(f"{len(pairs)} images of {height}x{width}, {num_classes} classes; "
          f"{processor_name()}, {torch.get_num_threads()} threads; "
          "identical counts")

    def total(counts):
        return lambda: [counts(p, t, num_classes, i) for p, t, i in pairs]

    ours = milliseconds(total(our_counts), args.repeats) / len(pairs)
    theirs = milliseconds(total(per_class_counts), args.repeats) / len(pairs)
    model = optimize_for_inference(
        ainnoseg.build_model(args.model, num_classes=num_classes).eval(), amp="auto")
    image = torch.randn(1, 3, height, width)
    with torch.no_grad():
        forward = milliseconds(lambda: ainnoseg.predict(model, image), args.repeats)
    print(f"{'boundary counts, per image':28} {'ms':>8}")
    print(f"{'ours':28} {ours:8.1f}")
    print(f"{'per-class formulation':28} {theirs:8.1f}")
    print(f"per-class / ours: {theirs / ours:.1f}x")
    print(f"{args.model} forward pass (fast path): {forward:.1f} ms; "
          f"ours / forward {ours / forward:.2f}, per-class / forward {theirs / forward:.2f}")


if __name__ == "__main__":
    main()
