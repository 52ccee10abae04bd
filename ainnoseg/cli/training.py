"""`ainnoseg train`, `ainnoseg selftrain` and `ainnoseg publish`."""

import os
from pathlib import Path

from ..inference.multiscale import PAPER_SCALES
from ..inference.precision import AMP_SETTINGS


def _config_from_args(args, examples):
    """The config a CONFIG [key=value ...] command line names, run_dir defaulting
    (unless the file or an override sets it) to runs/<config name>."""
    from ..config import ConfigError, load_config

    if args.config is None:
        raise ConfigError(f"give a config file (see {examples}) or --resume RUN_DIR")
    return load_config(args.config, args.overrides,
                       defaults={"run_dir": f"runs/{Path(args.config).stem}"})


def _resume_overrides(args):
    """key=value words after `--resume RUN_DIR` (argparse puts the first in
    the config slot); a config file there is refused."""
    from ..config import ConfigError

    words = ([args.config] if args.config else []) + list(args.overrides)
    files = [word for word in words if "=" not in word]
    if files:
        raise ConfigError(f"--resume continues the config inside the run directory; "
                          f"drop {files[0]}")
    return words


def _main_process():
    """Not a second process of torchrun (whose group training has left by now)."""
    return os.environ.get("RANK", "0") == "0"


def run_train(args):
    """Train from a config file, or resume a run directory; then what it reached."""
    from ..engine.train import resume, run_summary, train

    if args.resume:
        resume(args.resume, _resume_overrides(args))
        run_dir = args.resume
    else:
        config = _config_from_args(args, "configs/")
        train(config)
        run_dir = config.run_dir
    if _main_process():
        print(run_summary(run_dir))
    return 0


def run_selftrain(args):
    """Self-train from a config file, or resume a self-training run directory."""
    from ..engine.selftrain import resume_selftrain, selftrain
    from ..engine.selftrain_summary import format_summary

    if args.resume:
        summary = resume_selftrain(args.resume, _resume_overrides(args))
    else:
        summary = selftrain(_config_from_args(args, "configs/selftrain_*.yaml"))
    if summary is not None:
        print(format_summary(summary))
    return 0


def run_selftrain_compare(args):
    """A self-training run's rounds beside its budget-matched control's."""
    from ..files import write_json
    from ..runs.control import control_comparison, format_comparison

    record = control_comparison(args.run_dir, args.control_dir, partial=args.partial)
    print(format_comparison(record))
    if args.out:
        write_json(args.out, record)
        print(f"wrote {args.out}")
    return 0


def run_publish(args):
    """Half-precision weights of a run's best checkpoint, scored, into a manifest."""
    from ..engine.publish import publish

    entry = publish(args.run_dir, args.out, args.name or Path(args.run_dir).name,
                    data=args.data, split=args.split, amp=args.amp,
                    ms_scales=tuple(args.ms_scales), command=args.command,
                    trained_on=args.trained_on, note=args.note, round_index=args.round,
                    works_on=args.works_on, limits=args.limits)
    for kind, scores in entry["val"].items():
        print(f"{kind}: mIoU {100 * scores['mean_iou']:.2f}, pixel accuracy "
              f"{100 * scores['pixel_accuracy']:.2f}, Boundary IoU "
              f"{100 * scores['boundary_iou']:.2f}  ({scores['command']})")
    print(f"wrote {Path(args.out) / entry['file']} and its entry in "
          f"{Path(args.out) / 'manifest.json'}")
    return 0


def _add_publish_parser(commands):
    parser = commands.add_parser(
        "publish", help="release a run's best checkpoint with its scores",
        description="Writes OUT/NAME.pt, the run's best.pt as float16 weights without "
                    "optimizer state, and its entry in OUT/manifest.json: model, config, "
                    "command, iterations, wall time, hardware, and the val metrics of the "
                    "written file single-scale and multi-scale + flip, with the `ainnoseg "
                    "eval` commands that reproduce them.")
    parser.add_argument("run_dir", help="a training run directory (holding best.pt), or a "
                                        "self-training run with --round")
    parser.add_argument("--round", type=int, metavar="R",
                        help="publish round R's fine-tuned student of a self-training run "
                             "(the checkpoint the round evaluated and passed on as teacher)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for the weights and manifest.json")
    parser.add_argument("--name", help="entry and file name (default: the run directory's)")
    parser.add_argument("--data", help="dataset to score on (default: the run's)")
    parser.add_argument("--split", help="split to score on (default: the run's val split)")
    parser.add_argument("--amp", choices=AMP_SETTINGS, default="bf16",
                        help="inference precision of the scores (default bf16)")
    parser.add_argument("--ms-scales", type=float, nargs="+",
                        default=list(PAPER_SCALES), metavar="S",
                        help="scales of the multi-scale + flip score (default: the "
                             "paper's 0.5 0.75 ... 2.0)")
    parser.add_argument("--command", help="the command that trained the run, for the record")
    parser.add_argument("--trained-on", metavar="TEXT",
                        help="the hardware that trained the run, when it was not this machine")
    parser.add_argument("--note", metavar="TEXT", help="anything else a reader must know")
    parser.add_argument("--works-on", metavar="TEXT",
                        help="the images the model is made for, in words, for its model card "
                             "(default: the replaced entry's)")
    parser.add_argument("--limits", metavar="TEXT",
                        help='what to expect on other images, starting "expect ...", for its '
                             "model card (default: the replaced entry's)")
    parser.set_defaults(run=run_publish)


def _add_run_arguments(parser, resume_help):
    parser.add_argument("config", nargs="?", help="YAML config file")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.add_argument("--resume", metavar="RUN_DIR", help=resume_help)


def add_parsers(commands):
    train = commands.add_parser(
        "train", help="train a model from a config file",
        description="Train a model as a YAML config describes (see configs/); any config key "
                    "can be overridden as key=value, e.g. `ainnoseg train "
                    "configs/synthetic_quick.yaml lr=0.02 iterations=500`. The run directory "
                    "(default runs/<config name>) receives config.yaml, metrics.jsonl, "
                    "TensorBoard events, last.pt and best.pt. Data-parallel: "
                    "`torchrun --nproc_per_node=N -m ainnoseg train ...`.")
    _add_run_arguments(train, "continue a stopped run exactly where its last checkpoint left "
                              "it; key=value may change only data, workers, log_every and "
                              "checkpoint_every")
    train.set_defaults(run=run_train)
    _add_selftrain_parser(commands)
    _add_selftrain_compare_parser(commands)
    _add_publish_parser(commands)


def _add_selftrain_parser(commands):
    parser = commands.add_parser(
        "selftrain", help="teacher/student self-training rounds on an unlabeled pool",
        description="Round 0 trains a teacher on the labelled data (or takes teacher=CKPT); "
                    "each round then pseudo-labels the unlabeled pool (unlabeled=FOLDER) with "
                    "the teacher's multi-scale + flip inference, trains a student on the "
                    "pseudo-labels, fine-tunes it on the labelled data, evaluates it and makes "
                    "it the next teacher. Settings: rounds, threshold, student_init, "
                    "pseudo_ratio, pseudo_scales, ... (see ainnoseg/config.py); "
                    "student_data=labelled runs the budget-matched control, the same rounds "
                    "on the labelled data without pseudo-labels. The run "
                    "directory (default runs/<config name>) holds one folder per round and "
                    "progress.jsonl; a stopped run continues with --resume RUN_DIR.")
    _add_run_arguments(parser, "continue a stopped self-training run where it stopped; "
                               "key=value may change only data, workers, log_every and "
                               "checkpoint_every")
    parser.set_defaults(run=run_selftrain)


def _add_selftrain_compare_parser(commands):
    parser = commands.add_parser(
        "selftrain-compare", help="a self-training run's rounds against its control",
        description="Prints each round's val mIoU and Boundary IoU for a self-training run "
                    "and for its budget-matched control (the same teacher, rounds and "
                    "iterations with student_data=labelled), and the difference: what the "
                    "pseudo-labels bought, not the extra training. Both are the scores the "
                    "runs computed themselves.")
    parser.add_argument("run_dir", help="the self-training run directory")
    parser.add_argument("control_dir", help="its control's run directory")
    parser.add_argument("--out", metavar="FILE",
                        help="also write the comparison, with every class's IoU, as JSON")
    parser.add_argument("--partial", action="store_true",
                        help="compare the rounds both runs have finished (default: refuse a "
                             "run that is not finished)")
    parser.set_defaults(run=run_selftrain_compare)
