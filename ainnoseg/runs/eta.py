"""How long a run still needs, for the whole run, at the rates it has measured.

A training run's rate is its heartbeat's (seconds per step since its process
started, evaluations included, stops not), else its logged images/s. A
self-training run's phases are laid out from its config (per round:
pseudo-labelling the pool, the student's and the fine-tune's iterations, an
evaluation) and each remaining one is costed at the rate that phase kind ran
at so far, from progress.jsonl; training phases without a measurement of
their own take the rate of the other training phases (same model, crop and
batch).
"""

import statistics

TRAINING_PHASES = ("teacher", "student", "fine-tune")


def _segments(records):
    """Runs of progress records of one phase, each started by a record without
    an ETA (a phase starting or resuming): [(phase, first, last), ...]."""
    segments = []
    for record in records:
        opens = record.get("eta_s") is None or not segments or \
            (segments[-1][0], segments[-1][1].get("round")) != (record.get("phase"),
                                                                record.get("round"))
        if opens:
            segments.append([record.get("phase"), record, record])
        else:
            segments[-1][2] = record
    return segments


def phase_rates(records):
    """Seconds per step of each phase kind, from progress.jsonl records."""
    seconds, steps = {}, {}
    for phase, first, last in _segments(records):
        done = last.get("step", 0) - first.get("step", 0)
        if done > 0:
            seconds[phase] = seconds.get(phase, 0.0) + last["time"] - first["time"]
            steps[phase] = steps.get(phase, 0) + done
    rates = {phase: seconds[phase] / steps[phase] for phase in seconds}
    trained = [phase for phase in TRAINING_PHASES if phase in rates]
    if trained:
        pooled = sum(seconds[p] for p in trained) / sum(steps[p] for p in trained)
        for phase in TRAINING_PHASES:
            rates.setdefault(phase, pooled)
    return rates


def active_seconds(records):
    """Seconds the self-training run worked: each phase start or resume opens a
    segment lasting to its last record (stopped time is not counted)."""
    return sum(last["time"] - first["time"] for _, first, last in _segments(records))


def phase_plan(config, pool_size):
    """[(round, phase, steps)] of the whole self-training run, in order;
    steps None where not known (the pool's size before it is opened)."""
    iterations = config.get("iterations", 0)
    plan = [] if config.get("teacher") else [(0, "teacher", iterations)]
    plan.append((0, "eval", 1))
    for round_index in range(1, config.get("rounds", 0) + 1):
        plan += [(round_index, "pseudo-label", pool_size),
                 (round_index, "student", config.get("student_iterations") or iterations),
                 (round_index, "fine-tune", config.get("finetune_iterations") or iterations),
                 (round_index, "eval", 1)]
    return plan


def selftrain_remaining(config, records, pool_size, finished):
    """(remaining phases as [{"round", "phase", "steps", "seconds"}], total
    seconds or None where a phase has no measured rate yet)."""
    if finished:
        return [], 0.0
    plan = phase_plan(config, pool_size)
    remaining = [list(item) for item in plan]
    if records:  # the phase the last record is in, and every phase after it
        last = records[-1]
        keys = [(round_index, phase) for round_index, phase, _ in plan]
        here = (last.get("round"), last.get("phase"))
        if here in keys:
            remaining = [list(item) for item in plan[keys.index(here):]]
            remaining[0][2] = max(0, (last.get("total") or 0) - (last.get("step") or 0))
    return _costed(remaining, phase_rates(records))


def _costed(remaining, rates):
    rows, total = [], 0.0
    for round_index, phase, steps in remaining:
        rate = rates.get(phase)
        seconds = None if steps is None or rate is None else round(steps * rate, 1)
        rows.append({"round": round_index, "phase": phase, "steps": steps, "seconds": seconds})
        total = None if total is None or seconds is None else round(total + seconds, 1)
    return rows, total


def train_seconds_per_step(heartbeat, loss_rows, batch_size):
    """A training run's seconds a step: its heartbeat's since its process
    started (evaluations included, the spans it was stopped left out where
    the heartbeat has `active_s`), else the logged images/s (steps only)."""
    if heartbeat:
        since = heartbeat.get("since") or {}
        done = heartbeat.get("step", 0) - since.get("step", 0)
        if done > 0:
            return heartbeat.get("active_s", heartbeat["time"] - since["time"]) / done
    speeds = [row["images_per_s"] for row in loss_rows if row.get("images_per_s")]
    if speeds and batch_size:
        return batch_size / statistics.median(speeds)
    return None


def train_remaining(step, total, seconds_per_step, finished):
    """(remaining phases, seconds) of a training run, shaped like self-training's."""
    if finished:
        return [], 0.0
    if step is None or total is None:
        return [], None
    steps = max(0, total - step)
    return _costed([[None, "train", steps]], {"train": seconds_per_step}
                   if seconds_per_step is not None else {})
