"""A self-training run against its budget-matched control: each round's
fine-tuned student beside the control's, which trained the same iterations
from the same teacher on the labelled set alone (`student_data=labelled`).

    record = control_comparison("runs/st", "runs/st_control")
    print(format_comparison(record))
    rows = comparison_table(record)              # for a page's table

The difference between the two is what a round's pseudo-labels bought, not its
extra training. Both sides are the scores the runs computed themselves (each
round's metrics.json), so they are measured alike. Scores are fractions."""

from pathlib import Path

from ..config import ConfigError, load_saved_config
from . import layout
from .files import read_json

SCORE_KEYS = ("mean_iou", "pixel_accuracy", "score", "boundary_iou", "class_iou")
# What both runs must share for the comparison to be budget-matched.
MATCHED_KEYS = ("teacher", "rounds", "student_init", "student_iterations", "finetune_iterations",
                "iterations", "data", "train_split", "val_split", "model", "seed")


def is_control(config):
    """Whether a self-training config is a control run's."""
    return config.student_data == "labelled"


def is_control_run(run):
    """Whether a listed run (`ainnoseg.runs.Run`) is a control run."""
    return (run.config or {}).get("student_data") == "labelled"


def _round_scores(run_dir, rounds, partial):
    """Each round's val scores, round 0 (the teacher) first; with `partial`,
    up to the first round not evaluated yet."""
    scores = []
    for round_index in range(rounds + 1):
        metrics = read_json(layout.round_dir(run_dir, round_index) / layout.ROUND_METRICS)
        if metrics is None:
            if partial:
                break
            raise ConfigError(f"round {round_index} of {run_dir} is not finished; continue it "
                              f"with `ainnoseg selftrain --resume {run_dir}`")
        scores.append({key: metrics[key] for key in SCORE_KEYS})
    return scores


def control_comparison(run_dir, control_dir, partial=False):
    """{"run", "control", "rounds": [{"round", "selftrain", "control"}]}: the
    val scores of every round of the self-training run `run_dir` and of its
    control `control_dir` (with `partial`, of the rounds both have finished).
    Refused unless the control is one (`student_data=labelled`) with the same
    teacher, rounds and iterations."""
    run_dir, control_dir = Path(run_dir), Path(control_dir)
    run = load_saved_config(run_dir / layout.SELFTRAIN_CONFIG)
    control = load_saved_config(control_dir / layout.SELFTRAIN_CONFIG)
    if is_control(run):
        raise ConfigError(f"{run_dir} is a control run (student_data=labelled); give the "
                          "self-training run first, then its control")
    if not is_control(control):
        raise ConfigError(f"{control_dir} trains its students on pseudo-labels; its control is "
                          "a run with student_data=labelled")
    differ = [f"{key} ({getattr(run, key)} and {getattr(control, key)})"
              for key in MATCHED_KEYS if getattr(run, key) != getattr(control, key)]
    if differ:
        raise ConfigError(f"{control_dir} is not {run_dir}'s budget-matched control: their "
                          f"{', '.join(differ)} differ")
    pairs = zip(_round_scores(run_dir, run.rounds, partial),
                _round_scores(control_dir, control.rounds, partial))
    return {
        "run": str(run_dir), "control": str(control_dir),
        "rounds": [{"round": index, "selftrain": ours, "control": theirs}
                   for index, (ours, theirs) in enumerate(pairs)],
    }


def comparison_table(record):
    """One row per round: "round", val "mIoU" and "control mIoU", their
    "difference" (self-training minus control), "Boundary IoU" and "control
    Boundary IoU"."""
    rows = []
    for row in record["rounds"]:
        ours, theirs = row["selftrain"], row["control"]
        rows.append({"round": row["round"], "mIoU": ours["mean_iou"],
                     "control mIoU": theirs["mean_iou"],
                     "difference": ours["mean_iou"] - theirs["mean_iou"],
                     "Boundary IoU": ours["boundary_iou"],
                     "control Boundary IoU": theirs["boundary_iou"]})
    return rows


def format_comparison(record):
    """comparison_table as text for the terminal, in %."""
    lines = ["round  val mIoU %  control %  difference  Boundary IoU %  control %"]
    for row in comparison_table(record):
        lines.append(f"{row['round']:>5}  {100 * row['mIoU']:10.2f}  "
                     f"{100 * row['control mIoU']:9.2f}  {100 * row['difference']:+10.2f}  "
                     f"{100 * row['Boundary IoU']:14.2f}  {100 * row['control Boundary IoU']:9.2f}")
    return "\n".join(lines)
