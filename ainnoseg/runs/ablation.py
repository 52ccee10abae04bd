"""Ablation plans: settings x seeds of training runs, their background jobs,
and the record of what the runs scored (`ablation_table` shows it).

A plan is a YAML file (see configs/ablation/):

    name: camvid_screen
    base: [data=../shared/datasets/camvid, iterations=600]  # every run's overrides
    seeds: [0, 1]
    classes: [Pole, SignSymbol, Pedestrian, Bicyclist]  # per-class IoU columns
    settings:
      - name: ainnoseg_w18s, OCR pixels = DA output alone
        config: configs/camvid_ainnoseg_w18s.yaml
        overrides: [ocr_pixels=da]
    releases: [camvid/hrnetv2_w18s]  # optional: released models to show beside them

Each (setting, seed) is one `ainnoseg train` run in runs/ablation/<plan
name>/<setting slug>-seed<seed>. A setting's numbers are those of the last
validation of each run (at its final iteration, so no run is picked by its
val score), as mean and standard deviation over the seeds. A released
model's are its manifest's single-scale val scores (at the step its run chose
on val).
"""

import re
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..checkpoints.released import list_released
from ..config import ConfigError, load_config
from . import jobs, layout, supervisor
from .files import read_jsonl
from .read import load_run

# The table's columns: (heading, metric key in metrics.jsonl), then the
# plan's classes (default CamVid's thin and small ones).
OVERALL = (("mIoU", "val.mean_iou"), ("acc.", "val.pixel_accuracy"),
           ("BIoU", "val.boundary_iou"))
THIN_CLASSES = ("Pole", "SignSymbol", "Pedestrian", "Bicyclist")
FINISHED = ("done", "recorded")  # the run states `status` needs no more training for


@dataclass(frozen=True)
class Setting:
    name: str
    config: str
    overrides: tuple


@dataclass(frozen=True)
class Plan:
    name: str
    base: tuple
    seeds: tuple
    settings: tuple
    root: Path
    classes: tuple = THIN_CLASSES
    releases: tuple = ()  # released models the table shows beside the settings


@dataclass(frozen=True)
class PlannedRun:
    setting: Setting
    seed: int
    run_dir: Path
    overrides: tuple  # base, the setting's, then seed=...
    iterations: int  # the run's last step, where its validation counts

    @property
    def command(self):
        """The training command, as a shell line (arguments quoted)."""
        return train_command(self.setting.config, self.overrides, self.run_dir)


def train_command(config, overrides, run_dir):
    return shlex.join(["ainnoseg", "train", config, *overrides, f"run_dir={run_dir}"])


def _run_name(setting, seed):
    return f"{slug(setting.name)}-seed{seed}"


def slug(name):
    """"ainnoseg_w18s, OCR pixels = DA + HRNet" -> "ainnoseg_w18s-ocr-pixels-da-hrnet"."""
    return re.sub(r"[^a-z0-9_]+", "-", name.lower()).strip("-")


def load_plan(path, root="runs/ablation"):
    """The Plan in a YAML file; every setting's config is checked (a bad key
    or value raises ConfigError naming the setting) before anything runs."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no ablation plan at {path}")
    values = yaml.safe_load(path.read_text()) or {}
    missing = [key for key in ("name", "seeds", "settings") if not values.get(key)]
    if missing:
        raise ConfigError(f"ablation plan {path} needs {', '.join(missing)} (see ainnoseg/runs/ablation.py)")
    settings = tuple(Setting(str(item["name"]), str(item["config"]),
                             tuple(str(o) for o in item.get("overrides", ())))
                     for item in values["settings"])
    slugs = [slug(setting.name) for setting in settings]
    if len(set(slugs)) != len(slugs):
        raise ConfigError(f"ablation plan {path}: two settings share a name {slugs}")
    plan = Plan(str(values["name"]), tuple(str(o) for o in values.get("base", ())),
                tuple(int(seed) for seed in values["seeds"]), settings,
                Path(root) / str(values["name"]),
                tuple(str(name) for name in values.get("classes", THIN_CLASSES)),
                tuple(str(name) for name in values.get("releases", ())))
    released = {release["name"] for release in list_released()}
    unknown = [name for name in plan.releases if name not in released]
    if unknown:
        raise ConfigError(f"ablation plan {path}: {unknown} not released; the released "
                          f"models are {sorted(released)}")
    for setting in settings:
        try:
            load_config(setting.config, [*plan.base, *setting.overrides])
        except ConfigError as error:
            raise ConfigError(f"setting {setting.name!r} of {path}: {error}") from None
    return plan


def _overrides(plan, setting, seed):
    return (*plan.base, *setting.overrides, f"seed={seed}")


def planned_runs(plan):
    """Every (setting, seed) run of the plan, settings first, seeds within."""
    runs = []
    for setting in plan.settings:
        iterations = load_config(setting.config, [*plan.base, *setting.overrides]).iterations
        runs += [PlannedRun(setting, seed, plan.root / _run_name(setting, seed),
                            _overrides(plan, setting, seed), iterations)
                 for seed in plan.seeds]
    return runs


def final_validation(run_dir, iterations):
    """The metrics of the run's validation at step `iterations`, or None
    while the run has not got there."""
    path = Path(run_dir) / layout.METRICS_LOG
    if not path.is_file():
        return None
    records = [r for r in read_jsonl(path) if "val.mean_iou" in r and r["step"] == iterations]
    return records[-1] if records else None


def run_state(run):
    """"done" (validated at its last step), "running" (a process works in its
    run directory), "failed" (its job ended with an error: see job.log),
    "started" (stopped with a checkpoint to resume from) or "new"."""
    if final_validation(run.run_dir, run.iterations) is not None:
        return "done"
    if jobs.active_process(run.run_dir):
        return "running"
    has_job = (run.run_dir / supervisor.RECORD).is_file()
    record = supervisor.read_record(run.run_dir) if has_job else None
    if record and record.get("exit_code") not in (None, 0) and not record.get("stop_requested"):
        return "failed"
    return "started" if (run.run_dir / layout.LAST).is_file() else "new"


@dataclass(frozen=True)
class Progress:
    """Where a planned run stands: its state (see `run_state`), what its run
    directory holds (None for a new run) and the step it reached: its last
    for a finished run, its latest logged one while it runs, else where a
    resume starts. A "recorded" run finished on another machine: its
    directory is not here, its entry in a record `collect` wrote is."""
    run: PlannedRun
    state: str
    facts: object
    step: int
    recorded: dict | None = None


def progress(run, kept=None):
    """The Progress of a planned run, read from its run directory, or from
    `kept` ({(setting name, seed): run entry}, see `recorded_runs`) where
    the directory is not here."""
    if _only_recorded(run, kept):
        return Progress(run, "recorded", None, run.iterations, kept[run.setting.name, run.seed])
    state = run_state(run)
    if state == "new":
        return Progress(run, state, None, 0)
    facts = load_run(run.run_dir)
    if state == "done":
        step = run.iterations
    elif state == "running":
        step = facts.step or 0
    else:
        step = facts.checkpoint_step or 0
    return Progress(run, state, facts, step)


def status_line(run_progress):
    """One line of `ainnoseg ablation status`: the run's state, then, once its
    directory holds a run, its step of its iterations, its best val mIoU so
    far, the hours it has trained (summed over its starts) and, while it
    runs, about how many it still needs; the run directory last. A
    recorded run shows its recorded val mIoU."""
    run, state, facts = run_progress.run, run_progress.state, run_progress.facts
    parts = [f"{state:8}"]
    if state == "recorded":
        mean_iou = run_progress.recorded["metrics"]["val.mean_iou"]
        parts += [f"{run_progress.step:>6}/{run.iterations:<6}", f"val mIoU {100 * mean_iou:4.1f} %",
                  "in the record, its directory is not here"]
    if facts is not None:
        parts.append(f"{run_progress.step:>6}/{run.iterations:<6}")
        best = (facts.best or {}).get("val")
        parts.append(f"val mIoU {100 * best['mean_iou']:4.1f} %" if best else "val mIoU    - ")
        if facts.duration_s:
            parts.append(f"{facts.duration_s / 3600:4.1f} h")
        if state == "running" and facts.eta_s:
            parts.append(f"about {facts.eta_s / 3600:.1f} h left")
    return "  ".join(parts + [str(run.run_dir)])


def _seconds_per_step(run_progress):
    """The hours a run has trained (over its starts) per step reached, in
    seconds, or None where it has not trained."""
    facts = run_progress.facts
    if facts is None or not facts.duration_s or not run_progress.step:
        return None
    return facts.duration_s / run_progress.step


def _mean(values):
    values = [value for value in values if value is not None]
    return statistics.fmean(values) if values else None


def time_left(progresses):
    """(seconds the unfinished runs still need, how many have no rate to cost
    them by). A running run counts its own estimate; any other is costed at
    its own rate so far (hours trained per step), else at the mean rate of
    its setting's runs, else of the runs of its config (a setting with other
    overrides)."""
    rates = {id(item): _seconds_per_step(item) for item in progresses}
    seconds, unmeasured = 0.0, 0
    for item in progresses:
        if item.state in FINISHED:
            continue
        if item.state == "running" and item.facts.eta_s:
            seconds += item.facts.eta_s
            continue
        rate = rates[id(item)]
        for same in (lambda other: other.run.setting == item.run.setting,
                     lambda other: other.run.setting.config == item.run.setting.config):
            if rate is None:
                rate = _mean(rates[id(other)] for other in progresses if same(other))
        if rate is None:
            unmeasured += 1
        else:
            seconds += rate * (item.run.iterations - item.step)
    return seconds, unmeasured


def plan_summary(progresses):
    """The last line of `ainnoseg ablation status`: how many runs are in each
    state and about how many hours the unfinished ones still need (`time_left`)."""
    counts = {}
    for item in progresses:
        counts[item.state] = counts.get(item.state, 0) + 1
    states = ", ".join(f"{counts[state]} {state}" for state in
                       ("done", "recorded", "running", "started", "failed", "new")
                       if state in counts)
    runs = _runs(len(progresses))
    unfinished = len(progresses) - sum(counts.get(state, 0) for state in FINISHED)
    if not unfinished:
        return f"{runs}: all done"
    seconds, unmeasured = time_left(progresses)
    untimed = f"{_runs(unmeasured)} of configs not yet timed"
    if unmeasured == unfinished:
        return f"{runs}: {states}; {untimed}"
    left = f"about {seconds / 3600:.1f} h of training left"
    return f"{runs}: {states}; {left}" + (f", besides {untimed}" if unmeasured else "")


def _runs(count):
    return f"{count} run" if count == 1 else f"{count} runs"


def _run_metrics(record, class_names, run_dir):
    metrics = {key: record[key] for _, key in OVERALL}
    class_iou = record.get("val.class_iou", {})
    missing = [name for name in class_names if name not in class_iou]
    if missing:
        raise ConfigError(f"{run_dir} has no IoU for {missing}; its classes are "
                          f"{list(class_iou)}: name those in the plan's classes")
    return {**metrics, **{name: class_iou[name] for name in class_names}}


def collect(plan, earlier=None):
    """{"plan", "settings": [{"name", "command", "runs": [{"seed", "run_dir",
    "metrics"}], "mean", "std"}]} from the runs' recorded validations;
    runs that have not finished are left out, and a setting with none has
    no mean. A run whose directory is not on this machine keeps its entry
    in `earlier` (a record collect returned before), so a record collected
    on one machine and continued on another holds every finished run."""
    kept = recorded_runs(plan, earlier)
    by_setting = {}
    for run in planned_runs(plan):
        entry = by_setting.setdefault(run.setting.name, {
            "name": run.setting.name, "runs": [],
            "command": train_command(run.setting.config, _overrides(plan, run.setting, "SEED"),
                                     plan.root / _run_name(run.setting, "SEED"))})
        if not run.run_dir.is_dir():
            if (run.setting.name, run.seed) in kept:
                entry["runs"].append(kept[run.setting.name, run.seed])
            continue
        record = final_validation(run.run_dir, run.iterations)
        if record is not None:
            entry["runs"].append({"seed": run.seed, "run_dir": str(run.run_dir),
                                  "metrics": _run_metrics(record, plan.classes, run.run_dir)})
    for entry in by_setting.values():
        values = [run["metrics"] for run in entry["runs"]]
        if values:
            entry["mean"] = {key: statistics.fmean(v[key] for v in values) for key in values[0]}
            entry["std"] = {key: statistics.pstdev([v[key] for v in values]) for key in values[0]}
    record = {"plan": plan.name, "seeds": list(plan.seeds), "classes": list(plan.classes),
              "settings": list(by_setting.values())}
    if plan.releases:
        record["releases"] = release_entries(plan)
    return record


def release_entries(plan):
    """The released models the plan names, as its record holds them (see
    `_release_entry`), read from their manifests."""
    manifest = {release["name"]: release["entry"] for release in list_released()}
    return [_release_entry(name, manifest[name], plan.classes) for name in plan.releases]


def _release_entry(name, entry, class_names):
    """Released model `name` (its manifest `entry`) as the record holds it:
    its command, seed, iterations, the step chosen on val, and its
    single-scale val scores."""
    scores = entry["val"]["single_scale"]
    record = {f"val.{key}": scores[key] for key in ("mean_iou", "pixel_accuracy", "boundary_iou")}
    return {"name": name, "command": entry["command"], "seed": entry["config"].get("seed"),
            "iterations": entry["iterations"], "best_step": entry["best_step"],
            "metrics": _run_metrics({**record, "val.class_iou": scores["class_iou"]},
                                    class_names, name)}


def recorded_runs(plan, record):
    """{(setting name, seed): run entry} of a record `collect` returned for
    this plan."""
    if record is None:
        return {}
    if record.get("plan") != plan.name or record.get("classes") != list(plan.classes):
        raise ConfigError(f"the earlier record is of plan {record.get('plan')!r} with classes "
                          f"{record.get('classes')}, not of {plan.name!r} with {list(plan.classes)}")
    return {(entry["name"], run["seed"]): run
            for entry in record["settings"] for run in entry["runs"]}


def _only_recorded(run, kept):
    """Whether `run` finished elsewhere: its directory is not here, its entry
    is in `kept` (see `recorded_runs`)."""
    return not run.run_dir.is_dir() and (run.setting.name, run.seed) in (kept or {})


def job_launch(run, resume):
    """Start `run` as a background job, resumed from its checkpoint if
    `resume`; returns the job record."""
    if resume:
        return jobs.launch("train", run_dir=run.run_dir, resume=True)
    return jobs.launch("train", run.setting.config, run.overrides, run_dir=run.run_dir)


def run_plan(plan, parallel=2, poll_s=20.0, out=sys.stdout, recorded=None):
    """Run every unfinished run of the plan, `parallel` jobs at a time, which
    share the cores by the thread policy (`ainnoseg.threads`); started runs
    resume, finished ones are skipped, so running the plan again continues
    it. So are the runs a `recorded` record (what `collect` returned) holds
    whose directories are not on this machine. Returns when all are done."""
    kept = recorded_runs(plan, recorded)
    waiting = [run for run in planned_runs(plan)
               if run_state(run) != "done" and not _only_recorded(run, kept)]
    running = []
    while waiting or running:
        for run in [run for run in running if not jobs.active_process(run.run_dir)]:
            running.remove(run)
            print(f"{run_state(run)}: {run.run_dir}", file=out, flush=True)
        while waiting and len(running) < parallel:
            run = waiting.pop(0)
            if run_state(run) == "running":  # started by an earlier `run`, still going
                print(f"running {run.run_dir}", file=out, flush=True)
            else:  # a failed run starts again from its last checkpoint
                resume = (run.run_dir / layout.LAST).is_file()
                job_launch(run, resume)
                print(f"{'resumed' if resume else 'started'} {run.run_dir}: {run.command}",
                      file=out, flush=True)
            running.append(run)
        time.sleep(poll_s)
    print(f"the runs of {plan.name} have ended", file=out, flush=True)
