"""What a self-training run's rounds record, read back: summary.json, the
rounds' scores and pseudo-labels as a table for the terminal, each round's
wall time, and what a published round says about itself."""

from pathlib import Path

from ..config import ConfigError, load_saved_config
from ..files import write_json
from ..runs import layout
from ..runs.files import read_json, read_jsonl

VAL_KEYS = ("pixel_accuracy", "mean_iou", "mean_class_accuracy", "score", "boundary_iou",
            "boundary_fscore")
PSEUDO_KEYS = ("images", "kept_share", "agreement", "mean_iou", "pixel_accuracy")


def write_summary(run_dir, rounds):
    """summary.json: per round, the checkpoint evaluated (round 0: the teacher;
    round r: the fine-tuned student), its val metrics, the checkpoint that
    pseudo-labelled the round and a summary of the pseudo-label statistics."""
    run_dir = Path(run_dir)
    rows = []
    for round_index in range(rounds + 1):
        round_dir = layout.round_dir(run_dir, round_index)
        results = read_json(round_dir / layout.ROUND_METRICS)
        stats = read_json(round_dir / layout.PSEUDO_STATS)
        teacher = read_json(round_dir / layout.TEACHER_RECORD)
        rows.append({
            "round": round_index,
            "labelled_by": teacher["checkpoint"] if teacher and round_index > 0 else None,
            "checkpoint": results["checkpoint"] if results else None,
            "val": {k: results[k] for k in VAL_KEYS} if results else None,
            "pseudo": {k: stats[k] for k in PSEUDO_KEYS} if stats else None,
        })
    write_json(run_dir / layout.SUMMARY, {"run_dir": str(run_dir), "rounds": rows})
    return read_json(run_dir / layout.SUMMARY)  # as written: NaN became null


def round_wall_time_hours(run_dir, round_index):
    """Hours round `round_index` of the self-training run in `run_dir` ran, from
    progress.jsonl: each phase start or resume opens a segment that lasts to its
    last record, so the time the run was stopped is not counted."""
    records = read_jsonl(Path(run_dir) / layout.PROGRESS)
    seconds, segment_start, previous = 0.0, None, None
    for record in records + [None]:
        starts = record is None or record["eta_s"] is None or record["round"] != round_index
        if starts and segment_start is not None:
            seconds += previous["time"] - segment_start["time"]
            segment_start = None
        if record is not None and record["round"] == round_index:
            if segment_start is None:
                segment_start = record
            previous = record
    return seconds / 3600


def round_record(run_dir, round_index):
    """What a published round-r checkpoint needs to say about its round:
    (its checkpoint path, a dict of the round's settings and pseudo-labels)."""
    run_dir = Path(run_dir)
    config = load_saved_config(run_dir / layout.SELFTRAIN_CONFIG)
    if not 1 <= round_index <= config.rounds:
        raise ConfigError(f"{run_dir} has rounds 1 to {config.rounds}; round {round_index} "
                          "holds no student (round 0 is the teacher)")
    round_dir = layout.round_dir(run_dir, round_index)
    if config.student_data == "labelled":
        raise ConfigError(
            f"{run_dir} is a control run (student_data=labelled): its rounds trained on the "
            "labelled set, not on pseudo-labels; publish a round's model as a training run, "
            f"`ainnoseg publish {round_dir / layout.FINETUNE}`")
    checkpoint = round_dir / layout.FINETUNE / layout.LAST
    stats = read_json(round_dir / layout.PSEUDO_STATS)
    if stats is None or not (round_dir / layout.ROUND_METRICS).is_file():
        raise ConfigError(f"round {round_index} of {run_dir} is not finished; continue it with "
                          f"`ainnoseg selftrain --resume {run_dir}`")
    record = {
        "round": round_index,
        "labelled_by": read_json(round_dir / layout.TEACHER_RECORD)["checkpoint"],
        "pool": f"{config.unlabeled or config.data} ({config.unlabeled_split})",
        "pseudo_scales": stats["scales"], "pseudo_flip": stats["flip"],
        "threshold": stats["threshold"], "student_init": config.student_init,
        "pseudo_ratio": config.pseudo_ratio,
        "student_iterations": config.student_iterations or config.iterations,
        "finetune_iterations": config.finetune_iterations or config.iterations,
        "pseudo": {key: stats[key] for key in PSEUDO_KEYS},
    }
    return checkpoint, record


def format_summary(summary):
    """One line per round: val mIoU, and the pseudo-labels' coverage, agreement, mIoU."""
    def percent(value):
        return "     -" if value is None else f"{100 * value:6.2f}"

    lines = ["round  val mIoU %  kept %  agree %  pseudo mIoU %"]
    for row in summary["rounds"]:
        val, pseudo = row["val"] or {}, row["pseudo"] or {}
        lines.append(f"{row['round']:>5}  {percent(val.get('mean_iou')):>10}  "
                     f"{percent(pseudo.get('kept_share'))}  {percent(pseudo.get('agreement')):>7}"
                     f"  {percent(pseudo.get('mean_iou')):>13}")
    return "\n".join(lines)
