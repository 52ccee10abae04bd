"""Sentences for a comparison (`ainnoseg.analysis.compare`): a column's caption, what
the disagreement map shows, what multi-scale testing changed. Markdown
strings, so that the demo page only places them."""

import torch

from .compare import SCORE_NAMES


def percent(value):
    return "n/a" if value is None else f"{100 * value:.1f} %"


def scores_line(scores):
    """"mIoU 61.2 % · pixel acc. 92.0 % · Boundary IoU 50.1 % · boundary F 55.0 %"."""
    return " · ".join(f"{label} {percent(scores[key])}" for key, label in SCORE_NAMES.items())


def column_caption(prediction, scores=None):
    """The model, its inference time and parameters, and its scores on the image."""
    lines = [f"**{prediction.name}** `{prediction.model_name}`",
             f"{prediction.seconds:.2f} s on this machine · "
             f"{prediction.parameters / 1e6:.2f} M parameters"]
    if scores is not None:
        lines.append(scores_line(scores))
        lines.append(f"errors: {percent(scores['boundary_errors'])} near boundaries, "
                     f"{percent(scores['interior_errors'])} inside regions")
    return "  \n".join(lines)


def machine_note():
    return f"Times are this machine's, with {torch.get_num_threads()} CPU threads."


def disagreement_text(summary, count):
    """What the disagreement map of `count` models shows, in one or two sentences."""
    if count < 2:
        return "One model only: nothing to disagree with."
    text = (f"The {count} models give different labels to {percent(summary['any'])} of the "
            "pixels")
    if count > 2:
        text += (f" (two labels: {percent(summary['two'])}, three or more: "
                 f"{percent(summary['three or more'])})")
    text += "."
    if summary.get("near_boundary") is not None:
        text += (f" {percent(summary['near_boundary'])} of the disagreements lie within the "
                 "Boundary IoU band of a ground-truth boundary, a band that covers "
                 f"{percent(summary['band'])} of the labelled pixels.")
    return text


def scale_change_text(name, change, scales, seconds):
    """What multi-scale + flip testing changed in model `name`'s prediction."""
    listed = ", ".join(f"{scale:g}" for scale in scales)
    text = (f"**{name}**, multi-scale ({listed}) + flip against single-scale: "
            f"{percent(change['changed'])} of the pixels changed label "
            f"({seconds[0]:.2f} s against {seconds[1]:.2f} s).")
    if change["transitions"]:
        moves = "; ".join(f"{source} to {target} {percent(share)}"
                          for source, target, share in change["transitions"])
        text += f" Most changes: {moves}."
    if "single" in change:
        for key in ("mean_iou", "boundary_iou"):
            text += (f" {SCORE_NAMES[key]} {percent(change['single'][key])} to "
                     f"{percent(change['multi'][key])}.")
    return text
