"""An ablation record (`ablation.collect`) as Markdown: the table of each
setting's mean ± std over its seeds, beside the released models the plan
names, and the command behind each row.

    record = ablation.collect(ablation.load_plan("configs/ablation/camvid_full.yaml"))
    print(ablation_table.markdown_table(record))
    print(ablation_table.commands_list(record))
"""

from .ablation import OVERALL


def _cell(entry, key):
    mean, spread = 100 * entry["mean"][key], 100 * entry["std"][key]
    return f"{mean:.1f} ± {spread:.1f}" if len(entry["runs"]) > 1 else f"{mean:.1f}"


def release_label(release):
    """"camvid/hrnetv2_w18s (released: step 4600 of 4600, chosen on val)"."""
    return (f"{release['name']} (released: step {release['best_step']} of "
            f"{release['iterations']}, chosen on val)")


def markdown_table(record):
    """The record as a Markdown table: each setting's mean ± std over its
    seeds (in %) and the seeds it has, then each released model the plan
    names (its one training run's scores at the step chosen on val)."""
    headings = [h for h, _ in OVERALL] + list(record["classes"])
    keys = [k for _, k in OVERALL] + list(record["classes"])
    lines = ["| setting | seeds | " + " | ".join(headings) + " |",
             "|---|---|" + "---|" * len(headings)]
    for entry in record["settings"]:
        if not entry["runs"]:
            continue
        seeds = ", ".join(str(run["seed"]) for run in entry["runs"])
        cells = [_cell(entry, key) for key in keys]
        lines.append(f"| {entry['name']} | {seeds} | " + " | ".join(cells) + " |")
    for release in record.get("releases", ()):
        cells = [f"{100 * release['metrics'][key]:.1f}" for key in keys]
        lines.append(f"| {release_label(release)} | {release['seed']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def commands_list(record):
    """Markdown list of each setting's command (SEED = each seed), then each
    released model's."""
    settings = "".join(f"- {entry['name']}: `{entry['command']}`\n"
                       for entry in record["settings"] if entry["runs"])
    releases = "".join(f"- {release['name']} (released): `{release['command']}`\n"
                       for release in record.get("releases", ()))
    return settings + releases
