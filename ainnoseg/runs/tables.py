"""Runs as tables, for a dashboard or a notebook: one row per run, the
released models, and the loss and val curves of several runs in one long
table to overlay.

    runs = ainnoseg.runs.list_runs("runs")
    pandas.DataFrame(runs_table(runs))
    pandas.DataFrame(curve_rows(runs, "val", "mean_iou"))   # run, step, value, ...
    config_diff(runs[0], runs[1])   # the config keys that differ

Scores stay fractions; times are datetimes and short texts ("1 h 05 min").
"""

from datetime import datetime


def format_seconds(seconds):
    """"42 s", "7 min 05 s", "2 h 05 min"; "" for None."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def position(run):
    """Where an unfinished run stands: "round 1 student 40/60", "train
    120/300"; "" for a finished run or one with no progress yet."""
    if run.status == "finished" or run.step is None or run.total is None:
        return ""
    prefix = f"round {run.round} " if run.round is not None else ""
    return f"{prefix}{run.phase or ''} {run.step}/{run.total}".strip()


def runs_table(runs):
    """One row per `ainnoseg.runs.Run`: "run", "status", "kind", "model",
    "dataset", "rounds" (self-training: student rounds), "where" (phase and
    step), "ETA", "best mIoU", "best Boundary IoU" (val, of its best
    checkpoint), "started" (a datetime), "duration"."""
    rows = []
    for run in runs:
        val = (run.best or {}).get("val") or {}
        running = run.status == "running"
        rows.append({
            "run": run.name, "status": run.status, "kind": run.kind, "model": run.model,
            "dataset": run.dataset,
            "rounds": max(len(run.rounds) - 1, 0) if run.kind == "selftrain" else None,
            "where": position(run), "ETA": format_seconds(run.eta_s) if running else "",
            "best mIoU": val.get("mean_iou"), "best Boundary IoU": val.get("boundary_iou"),
            "started": datetime.fromtimestamp(run.started) if run.started else None,
            "duration": format_seconds(run.duration_s),
        })
    return rows


def released_table(releases):
    """`ainnoseg.list_released()` as rows: name, model, val scores (in %, as
    the manifests give them), iterations and size."""
    return [{"name": r["name"], "model": r["model"], "val mIoU %": r["mean_iou"],
             "MS + flip mIoU %": r["ms_mean_iou"], "Boundary IoU %": r["boundary_iou"],
             "pixel acc. %": r["pixel_accuracy"], "iterations": r.get("iterations"),
             "MB": r["megabytes"]} for r in releases]


def curve_rows(runs, table, metric):
    """The `metric` column of each run's `curves[table]` ("loss" or "val") in
    long form: rows {"run", "phase", "round", "part" (e.g. "round 1 student":
    one line each), "step", "run step", "value"}.

    "run step" counts on across a self-training run's phases (teacher,
    student, fine-tune of each round), so its curves follow one another
    instead of starting again at 0; for a training run it is the step."""
    rows = []
    for run in runs:
        offset, last_key, last_step = 0, None, 0
        for row in run.curves.get(table, []):
            key = (row.get("round"), row.get("phase"))
            if key != last_key and last_key is not None:
                offset += last_step
            last_key, last_step = key, row.get("step", 0)
            if row.get(metric) is None:
                continue
            part = row.get("phase") if row.get("round") is None else \
                f"round {row['round']} {row.get('phase')}"
            rows.append({"run": run.name, "phase": row.get("phase"), "round": row.get("round"),
                         "part": part, "step": row["step"], "run step": offset + row["step"],
                         "value": row[metric]})
    return rows


def config_diff(first, second):
    """The config keys whose values differ between two runs (`Run`s), as rows
    {"key", "A", "B"} in the first run's key order; a key one run lacks reads
    as None there."""
    keys = list(dict.fromkeys([*first.config, *second.config]))
    return [{"key": key, "A": first.config.get(key), "B": second.config.get(key)}
            for key in keys if first.config.get(key) != second.config.get(key)]
