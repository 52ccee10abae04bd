"""Ablation plans: the runs a plan names, their table from what the runs
recorded, and a plan run for real as background jobs."""

import io
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from ainnoseg.cli import main as cli_main
from ainnoseg.config import ConfigError
from ainnoseg.checkpoints import released
from ainnoseg.runs import ablation, ablation_table

TINY = "configs/synthetic_tiny.yaml"
PLANS = Path(__file__).resolve().parents[1] / "configs" / "ablation"


def main(argv):
    """The CLI's exit status for `argv`."""
    with pytest.raises(SystemExit) as done:
        cli_main(argv)
    return done.value.code


def _plan_file(tmp_path, settings, seeds=(0, 1), base=("iterations=4",),
               classes=("pole", "sign", "person", "bicyclist")):
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump({"name": "screen", "base": list(base), "seeds": list(seeds),
                                    "classes": list(classes), "settings": settings}))
    return path


SETTINGS = [{"name": "hrnetv2 (baseline)", "config": TINY},
            {"name": "hrnetv2, ENet weights", "config": TINY,
             "overrides": ["class_weighting=enet"]}]


def test_a_plan_names_one_run_per_setting_and_seed(tmp_path):
    plan = ablation.load_plan(_plan_file(tmp_path, SETTINGS), root=tmp_path / "runs")
    runs = ablation.planned_runs(plan)
    assert [(r.setting.name, r.seed) for r in runs] == [
        ("hrnetv2 (baseline)", 0), ("hrnetv2 (baseline)", 1),
        ("hrnetv2, ENet weights", 0), ("hrnetv2, ENet weights", 1)]
    assert runs[3].run_dir == tmp_path / "runs" / "screen" / "hrnetv2-enet-weights-seed1"
    assert runs[3].overrides == ("iterations=4", "class_weighting=enet", "seed=1")
    assert runs[3].command == (f"ainnoseg train {TINY} iterations=4 class_weighting=enet seed=1 "
                               f"run_dir={runs[3].run_dir}")


def test_a_bad_plan_is_refused_before_anything_runs(tmp_path):
    bad = [{"name": "typo", "config": TINY, "overrides": ["class_weighting=inverse"]}]
    with pytest.raises(ConfigError, match="setting 'typo'.*class_weighting='inverse'"):
        ablation.load_plan(_plan_file(tmp_path, bad))
    with pytest.raises(ConfigError, match="share a name"):
        ablation.load_plan(_plan_file(tmp_path, [SETTINGS[0], SETTINGS[0]]))
    (tmp_path / "empty.yaml").write_text("name: x\n")
    with pytest.raises(ConfigError, match="needs seeds, settings"):
        ablation.load_plan(tmp_path / "empty.yaml")


def _record_validation(run_dir, step, miou, pole):
    run_dir.mkdir(parents=True, exist_ok=True)
    line = {"step": step, "val.mean_iou": miou, "val.pixel_accuracy": 0.9,
            "val.boundary_iou": miou / 2,
            "val.class_iou": {"pole": pole, "sign": 0.1, "person": 0.2, "bicyclist": 0.3}}
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps(line) + "\n")


def test_the_table_holds_each_settings_last_validations_mean_and_spread(tmp_path):
    plan = ablation.load_plan(_plan_file(tmp_path, SETTINGS), root=tmp_path)
    first, second, third, _ = ablation.planned_runs(plan)
    _record_validation(first.run_dir, 2, 0.99, 0.99)  # an earlier validation: not counted
    _record_validation(first.run_dir, 4, 0.50, 0.10)
    _record_validation(second.run_dir, 4, 0.60, 0.30)
    _record_validation(third.run_dir, 2, 0.70, 0.70)  # not finished: left out
    record = ablation.collect(plan)
    baseline, weighted = record["settings"]
    assert [run["seed"] for run in baseline["runs"]] == [0, 1]
    assert baseline["mean"]["val.mean_iou"] == pytest.approx(0.55)
    assert baseline["std"]["val.mean_iou"] == pytest.approx(0.05)
    assert baseline["mean"]["pole"] == pytest.approx(0.2)
    assert weighted["runs"] == [] and "mean" not in weighted
    assert "seed=SEED" in baseline["command"] and "seedSEED" in baseline["command"]
    table = ablation_table.markdown_table(record).splitlines()
    assert table[0] == "| setting | seeds | mIoU | acc. | BIoU | pole | sign | person | bicyclist |"
    assert table[2] == ("| hrnetv2 (baseline) | 0, 1 | 55.0 ± 5.0 | 90.0 ± 0.0 | 27.5 ± 2.5 "
                        "| 20.0 ± 10.0 | 10.0 ± 0.0 | 20.0 ± 0.0 | 30.0 ± 0.0 |")
    assert len(table) == 3
    other = ablation.load_plan(_plan_file(tmp_path, SETTINGS, classes=["Pole"]), root=tmp_path)
    with pytest.raises(ConfigError, match="no IoU for \\['Pole'\\]"):
        ablation.collect(other)


def test_the_table_shows_the_released_models_the_plan_names_beside_its_settings(tmp_path):
    path = _plan_file(tmp_path, SETTINGS[:1], seeds=(0,), classes=["Pole", "Bicyclist"])
    values = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**values, "releases": ["camvid/hrnetv2_w18s"]}))
    plan = ablation.load_plan(path, root=tmp_path)
    run = ablation.planned_runs(plan)[0]
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "metrics.jsonl").write_text(json.dumps(
        {"step": 4, "val.mean_iou": 0.5, "val.pixel_accuracy": 0.9, "val.boundary_iou": 0.4,
         "val.class_iou": {"Pole": 0.1, "Bicyclist": 0.2}}) + "\n")
    record = ablation.collect(plan)
    manifest = next(r["entry"] for r in released.list_released()
                    if r["name"] == "camvid/hrnetv2_w18s")
    scores = manifest["val"]["single_scale"]
    [entry] = record["releases"]
    assert entry["metrics"] == {"val.mean_iou": scores["mean_iou"],
                                "val.pixel_accuracy": scores["pixel_accuracy"],
                                "val.boundary_iou": scores["boundary_iou"],
                                "Pole": scores["class_iou"]["Pole"],
                                "Bicyclist": scores["class_iou"]["Bicyclist"]}
    table = ablation_table.markdown_table(record).splitlines()
    assert table[2].startswith("| hrnetv2 (baseline) | 0 | 50.0 | 90.0 | 40.0 | 10.0 | 20.0 |")
    assert table[3] == (
        f"| camvid/hrnetv2_w18s (released: step {manifest['best_step']} of "
        f"{manifest['iterations']}, chosen on val) | {manifest['config']['seed']} | "
        f"{100 * scores['mean_iou']:.1f} | {100 * scores['pixel_accuracy']:.1f} | "
        f"{100 * scores['boundary_iou']:.1f} | {100 * scores['class_iou']['Pole']:.1f} | "
        f"{100 * scores['class_iou']['Bicyclist']:.1f} |")
    assert ablation_table.commands_list(record).endswith(
        f"- camvid/hrnetv2_w18s (released): `{manifest['command']}`\n")

    path.write_text(yaml.safe_dump({**values, "releases": ["camvid/hrnetv3"]}))
    with pytest.raises(ConfigError, match=r"\['camvid/hrnetv3'\] not released"):
        ablation.load_plan(path, root=tmp_path)


def test_a_record_continued_on_another_machine_keeps_the_runs_that_are_not_here(tmp_path,
                                                                                capsys):
    plan_file = _plan_file(tmp_path, SETTINGS)
    first_machine = ablation.load_plan(plan_file, root=tmp_path / "first")
    baseline_0, _, weighted_0, _ = ablation.planned_runs(first_machine)
    _record_validation(baseline_0.run_dir, 4, 0.50, 0.10)
    _record_validation(weighted_0.run_dir, 2, 0.70, 0.70)  # not finished there
    earlier = ablation.collect(first_machine)

    second_machine = ablation.load_plan(plan_file, root=tmp_path / "second")
    _, baseline_1, weighted_0, weighted_1 = ablation.planned_runs(second_machine)
    _record_validation(baseline_1.run_dir, 4, 0.60, 0.30)
    _record_validation(weighted_0.run_dir, 4, 0.80, 0.40)
    baseline, weighted = ablation.collect(second_machine, earlier)["settings"]
    assert [run["run_dir"] for run in baseline["runs"]] == [str(baseline_0.run_dir),
                                                           str(baseline_1.run_dir)]
    assert baseline["mean"]["val.mean_iou"] == pytest.approx(0.55)
    assert [run["metrics"]["val.mean_iou"] for run in weighted["runs"]] == [0.80]

    # A third machine trains none of the runs the record holds.
    _record_validation(weighted_1.run_dir, 4, 0.8, 0.4)
    every_run = ablation.collect(second_machine, earlier)
    third_machine = ablation.load_plan(plan_file, root=tmp_path / "third")
    started = io.StringIO()
    ablation.run_plan(third_machine, poll_s=0.1, out=started, recorded=every_run)
    assert started.getvalue() == "the runs of screen have ended\n"
    record_file = tmp_path / "every_run.json"
    record_file.write_text(json.dumps(every_run))
    assert main(["ablation", "run", str(plan_file), "--root", str(tmp_path / "third"),
                 "--record", str(record_file)]) == 0
    assert not third_machine.root.exists()
    capsys.readouterr()
    assert main(["ablation", "status", str(plan_file), "--root", str(tmp_path / "third"),
                 "--record", str(record_file)]) == 0
    *lines, summary = capsys.readouterr().out.splitlines()
    assert summary == "4 runs: all done"
    assert re.fullmatch(r"recorded +4/4 +val mIoU +50\.0 % +in the record, its directory is "
                        r"not here +\S+baseline-seed0", lines[0]), lines[0]
    (tmp_path / "third" / "screen" / weighted_1.run_dir.name).mkdir(parents=True)
    assert main(["ablation", "status", str(plan_file), "--root", str(tmp_path / "third"),
                 "--record", str(record_file)]) == 0
    *lines, summary = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("new ") and summary.startswith("4 runs: 3 recorded, 1 new;")

    # A run here wins over its recorded entry, finished or not.
    _record_validation(second_machine.root / baseline_0.run_dir.name, 2, 0.9, 0.9)
    baseline, _ = ablation.collect(second_machine, earlier)["settings"]
    assert [run["seed"] for run in baseline["runs"]] == [1]

    with pytest.raises(ConfigError, match="earlier record is of plan 'other'"):
        ablation.collect(second_machine, {**earlier, "plan": "other"})
    out = tmp_path / "record.json"
    out.write_text("[]")
    assert main(["ablation", "collect", str(plan_file), "--root", str(tmp_path / "second"),
                 "--out", str(out)]) != 0
    assert "is not a record" in capsys.readouterr().err


def test_a_plan_runs_as_background_jobs_and_a_second_run_has_nothing_to_do(tmp_path, capsys):
    plan_file = _plan_file(tmp_path, SETTINGS[:1])
    root = str(tmp_path / "runs")
    assert main(["ablation", "status", str(plan_file), "--root", root]) == 0
    assert capsys.readouterr().out.count("new ") == 2
    plan = ablation.load_plan(plan_file, root=root)
    ablation.run_plan(plan, parallel=2, poll_s=0.5)
    out = tmp_path / "record.json"
    assert main(["ablation", "collect", str(plan_file), "--root", root, "--out", str(out)]) == 0
    (entry,) = json.loads(out.read_text())["settings"]
    assert [run["seed"] for run in entry["runs"]] == [0, 1]
    assert "| hrnetv2 (baseline) | 0, 1 |" in capsys.readouterr().out
    second = io.StringIO()
    ablation.run_plan(plan, parallel=2, poll_s=0.5, out=second)
    assert second.getvalue() == "the runs of screen have ended\n"  # nothing was left to start
    assert main(["ablation", "status", str(plan_file), "--root", root]) == 0
    *lines, summary = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and summary == "2 runs: all done"
    for line, seed in zip(lines, (0, 1)):  # state, step of total, best val mIoU, hours, folder
        assert re.fullmatch(r"done +4/4 +val mIoU +\d+\.\d % +\d+\.\d h +\S+", line), line
        assert line.endswith(f"hrnetv2-baseline-seed{seed}")


@pytest.mark.parametrize("path", sorted(PLANS.glob("*.yaml")), ids=lambda path: path.name)
def test_every_shipped_plan_loads(path):
    plan = ablation.load_plan(path)
    assert len(ablation.planned_runs(plan)) == len(plan.settings) * len(plan.seeds) >= 2


def test_the_plan_summary_costs_each_unfinished_run_at_the_closest_measured_rate():
    def item(setting, seed, state, step, duration_s=None, eta_s=None):
        run = ablation.PlannedRun(setting, seed, Path(f"{setting.name}-{seed}"), (), 100)
        facts = None if state == "new" else SimpleNamespace(duration_s=duration_s, eta_s=eta_s)
        return ablation.Progress(run, state, facts, step)

    base = ablation.Setting("base", "a.yaml", ())
    variant = ablation.Setting("variant", "a.yaml", ("x=1",))
    other = ablation.Setting("other", "b.yaml", ())
    untimed = ablation.Setting("untimed", "c.yaml", ())
    progresses = [
        item(base, 0, "done", 100, duration_s=1000),           # 10 s a step
        item(base, 1, "started", 40, duration_s=1200),         # 30 s a step: 60 x 30 left
        item(variant, 0, "new", 0),                            # its config's mean, 20: 100 x 20
        item(other, 0, "running", 50, duration_s=250, eta_s=500),  # its own estimate
        item(other, 1, "new", 0),                              # its setting's 5 s a step: 100 x 5
        item(untimed, 0, "new", 0),
    ]
    assert ablation.time_left(progresses) == (1800 + 2000 + 500 + 500, 1)
    assert ablation.plan_summary(progresses) == (
        "6 runs: 1 done, 1 running, 1 started, 3 new; about 1.3 h of training left, "
        "besides 1 run of configs not yet timed")
    assert ablation.plan_summary(progresses[-1:]) == "1 run: 1 new; 1 run of configs not yet timed"
    assert ablation.plan_summary(progresses[:1]) == "1 run: all done"
