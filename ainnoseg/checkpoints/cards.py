"""Model cards: what a released model was trained on, with what budget, what
it scores, and which images it works on, from its manifest entry.

    release = ainnoseg.list_released()[0]
    release["card"]                                  # model_card(release), Markdown
    other_images_notes([release_of(model)])          # for an uploaded image

A release is a `list_released` row: its "name", "dataset" and manifest
"entry". An entry's "works_on" and "limits" say in words which images the
model was made for and what to expect on others; an entry without them (a
new release, a checkpoint file) gets a sentence built from its dataset.
"""

from pathlib import Path


def works_on(release):
    """The images the model works on, in words."""
    entry = release["entry"]
    if entry.get("works_on"):
        return entry["works_on"]
    split = entry.get("config", {}).get("val_split", "val")
    return f"images like the {release['dataset']} {split} images the model was scored on"


def limits(release):
    """What to expect on other images, in words."""
    return release["entry"].get("limits") or (
        f"expect wrong labels and far lower scores: the model learnt from {release['dataset']} "
        "alone")


def _batches(config):
    batch, crop = config.get("batch_size"), config.get("crop_size")
    if not (batch and crop):
        return ""
    return f", in batches of {batch} crops of {crop[0]} x {crop[1]}"


def _start(config):
    start = config.get("init_checkpoint")
    if start:
        path = Path(start)
        if path.parent.parent.name == "checkpoints":  # a release: checkpoints/<set>/<name>.pt
            return f"fine-tuned from the {path.parent.name}/{path.stem} release"
        return f"fine-tuned from {path.name}"
    return "from ImageNet weights" if config.get("pretrained") else "from scratch"


def budget(release):
    """How the model was trained, e.g. "from scratch on camvid train: 4600
    iterations, in batches of 8 crops of 256 x 320"; "" when the entry does
    not say."""
    entry = release["entry"]
    config = entry.get("config", {})
    if not config:
        return ""
    data = f"{release['dataset']} {config.get('train_split', 'train')}"
    rounds = entry.get("selftrain")
    if rounds:
        pseudo = rounds.get("pseudo", {}).get("images")
        pool = f"pseudo-labels of {pseudo} unlabelled images" if pseudo else "pseudo-labels"
        start = "its teacher" if rounds.get("student_init") == "teacher" else "scratch"
        return (f"self-training round {rounds.get('round')} from {start}: "
                f"{rounds.get('student_iterations')} iterations on {data} and {pool}, then "
                f"{rounds.get('finetune_iterations')} on {data} alone{_batches(config)}")
    iterations = entry.get("iterations") or config.get("iterations")
    done = f": {iterations} iterations{_batches(config)}" if iterations else ""
    return f"{_start(config)} on {data}{done}"


def _percent(value):
    return f"{100 * value:.1f} %"


def _val(release):
    """(val split name, single-scale scores, multi-scale + flip scores) of a release."""
    entry = release["entry"]
    val = entry.get("val", {})
    return (entry.get("config", {}).get("val_split", "val"), val.get("single_scale") or {},
            val.get("multi_scale_flip") or {})


def scores(release):
    """The val scores in words, e.g. "val mIoU 61.8 % (62.3 % multi-scale +
    flip), Boundary IoU 51.0 %"; "" when the entry has none."""
    split, single, multi = _val(release)
    if single.get("mean_iou") is None:
        return ""
    text = f"{split} mIoU {_percent(single['mean_iou'])}"
    if multi.get("mean_iou") is not None:
        text += f" ({_percent(multi['mean_iou'])} multi-scale + flip)"
    if single.get("boundary_iou") is not None:
        text += f", Boundary IoU {_percent(single['boundary_iou'])}"
    return text


def model_card(release):
    """The card of `release` (a `list_released` row, or `release_of(model)`), as Markdown."""
    trained = budget(release) or f"trained on {release['dataset']}"
    scored = scores(release)
    lines = [f"**{release['name']}** ({release['entry'].get('model', 'model')}): {trained}.",
             f"{scored[:1].upper()}{scored[1:]}." if scored else "",
             f"**Works on** {works_on(release)}.", f"**Elsewhere** {limits(release)}."]
    return "  \n".join(line for line in lines if line)


def set_card(set_name, members):
    """The card of a model set, `members` {family: release}: each model's
    val mIoU, how they were trained (once when they share it) and what the
    set works on."""
    if not members:
        return ""
    budgets = {budget(release) for release in members.values()}
    shared = budgets.pop() if len(budgets) == 1 else ""
    lines = [f"**The {set_name} models**, small and trained on {set_name} alone:"]
    for family, release in members.items():
        split, single, _ = _val(release)
        score = f"{split} mIoU {_percent(single['mean_iou'])}" if "mean_iou" in single else ""
        about = "; ".join(filter(None, [score, "" if shared else budget(release)]))
        lines.append(f"- **{family}** `{release['name']}`" + (f": {about}" if about else ""))
    first = next(iter(members.values()))
    lines.append("")
    if shared:
        lines.append(f"**Training** {shared}.  ")
    lines.append(f"**Works on** {works_on(first)}.  \n**Elsewhere** {limits(first)}.")
    return "\n".join(lines)


def other_images_notes(releases):
    """One sentence per training dataset among `releases`, for an image that
    is none of that dataset's: what the models were trained on and what to
    expect on it. Releases whose dataset is None are left out."""
    notes = {}
    for release in releases:
        dataset = release["dataset"]
        if dataset is None:  # a checkpoint that does not say what it learnt from
            continue
        notes.setdefault(dataset, (
            f"These {dataset} models were trained for {dataset} and work on "
            f"{works_on(release)}; on other images {limits(release)}."))
    return list(notes.values())


def release_of(model):
    """What the cards need of a model from `ainnoseg.load`: its release
    {"name", "dataset", "entry"}, or for a checkpoint file that is no release
    the same keys from its training config ("dataset" None when it names no data)."""
    meta = model.meta
    if meta.release:
        return {"name": meta.name, "dataset": meta.name.split("/", 1)[0], "entry": meta.release}
    data = meta.config.get("data")
    return {"name": meta.name, "dataset": Path(str(data)).name if data else None,
            "entry": {"config": meta.config, "model": meta.config.get("model", "model")}}
