"""What a sweep shows of its trials: trials.csv and trials.md (settings, selection score, updates run,
pruned or not, time), one progress line per trial, and two charts: the score of every trial in order
with the best so far, and each searched setting against the score."""

from __future__ import annotations

import csv
import io
import math

from ..safety.atomic import write_atomically, write_text_atomically


def rows(trials, names: list[str]) -> list[dict]:
    """One row per trial of the study that ran (queued ones, surplus asks and repeats left out), by trial number."""
    out = []
    for trial in sorted(trials, key=lambda t: t.number):
        attrs = trial.user_attrs
        state = state_of(trial)
        if state in ("waiting", "surplus", "repeat"):
            continue
        row = {"trial": trial.number, "state": state, **{name: trial.params.get(name) for name in names},
               "score": attrs.get("score"), "steps": attrs.get("steps"), "seconds": attrs.get("seconds"),
               "rerun_of": attrs.get("rerun_of"), "teacher_logits": attrs.get("teacher_logits", ""),
               "teacher_seconds": attrs.get("teacher_seconds"), "note": attrs.get("message", "")}
        for point in attrs.get("points", []):  # --objectives accuracy,latency: each way to ship the student
            row.update({f"{point['format']}_{name}": point[name] for name in POINT_COLUMNS})
        out.append(row)
    return out


# What trials.csv keeps of each point of a trial (its student in PyTorch, as ONNX int8), one column per format.
POINT_COLUMNS = ("selection", "p50_ms", "p95_ms", "per_second", "parameters", "size_mb")
FORMATS = ("pytorch", "onnx-int8")


def state_of(trial) -> str:
    """complete, pruned, failed (its run failed), interrupted (rerun), running, waiting, surplus or repeat."""
    state = trial.state.name.lower()
    if state == "fail":
        failure = trial.user_attrs.get("failure")
        return {"error": "failed", "surplus": "surplus", "repeat": "repeat"}.get(failure, "interrupted")
    return state


def write_tables(folder, table: list[dict], names: list[str], metric: str, points: bool = False) -> None:
    """trials.csv and trials.md; with `points` (a multi-objective sweep), the columns of each point: its
    selection score (higher is better: a loss is negated), batch-1 p50 and p95 in ms, batch-64 sentences per
    second, parameters and MiB on disk, as timed right after the trial."""
    extra = [f"{fmt}_{name}" for fmt in FORMATS for name in POINT_COLUMNS] if points else []
    header = ["trial", "state", *names, f"selection_{metric}", "steps", "seconds", "rerun_of", "teacher_logits",
              "teacher_seconds", *extra, "note"]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    for row in table:
        writer.writerow([row["trial"], row["state"], *(row[n] for n in names), _plain(row["score"]), row["steps"],
                         _plain(row["seconds"], 1), "" if row["rerun_of"] is None else row["rerun_of"],
                         row["teacher_logits"], _plain(row["teacher_seconds"], 1),
                         *(_plain(row.get(column)) for column in extra), row["note"]])
    write_text_atomically(folder / "trials.csv", text.getvalue())
    lines = [f"| {' | '.join(header[:-1])} |", "|" + "---|" * (len(header) - 1)]
    for row in table:
        cells = [row["trial"], row["state"], *(shown(row[n]) for n in names), shown(row["score"], 4),
                 row["steps"] if row["steps"] is not None else "", shown(row["seconds"], 0),
                 "" if row["rerun_of"] is None else row["rerun_of"], row["teacher_logits"],
                 shown(row["teacher_seconds"], 1), *(shown(row.get(column)) for column in extra)]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    write_text_atomically(folder / "trials.md", "\n".join(lines) + "\n")


def _plain(value, digits: int = 6) -> str:
    return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def shown(value, digits: int | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}" if digits is not None else f"{value:.4g}"
    return str(value)


def progress_line(row: dict, names: list[str], total: int, metric: str, best: dict | None) -> str:
    settings = ", ".join(f"{n} {shown(row[n])}" for n in names)
    score = f"selection {metric} {row['score']:.4f}" if row["score"] is not None else "no score"
    why = f" ({row['note']})" if row["state"] == "failed" else ""
    line = (f"trial {row['trial']} [{row['done']}/{total}] {row['state']}{why}: {settings} -> {score} after "
            f"{row['steps']} updates, {row['seconds']:.0f} s")
    if best is not None:
        line += f" | best: trial {best['trial']}, {best['score']:.4f}"
    return line


def charts(folder, table: list[dict], names: list[str], log_scale: set[str], metric: str, maximize: bool) -> list[str]:
    """history.png and settings.png from the trials with a score (log_scale: the settings searched on a
    log scale); the names of the files written."""
    scored = [row for row in table if row["score"] is not None and row["state"] in ("complete", "pruned")]
    if not scored:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    colors = {"complete": "tab:blue", "pruned": "tab:gray"}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for state, color in colors.items():
        points = [r for r in scored if r["state"] == state]
        ax.scatter([r["trial"] for r in points], [r["score"] for r in points], c=color, label=state, s=24)
    best, line = None, []
    for row in sorted((r for r in scored if r["state"] == "complete"), key=lambda r: r["trial"]):
        if best is None or (row["score"] > best if maximize else row["score"] < best):
            best = row["score"]
        line.append((row["trial"], best))
    if line:
        ax.step([t for t, _ in line], [b for _, b in line], where="post", c="tab:orange", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"selection {metric}")
    ax.set_title("optimization history")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, folder / "history.png", plt)
    cols = min(3, len(names))
    fig, axes = plt.subplots(math.ceil(len(names) / cols), cols, figsize=(3.2 * cols, 2.8 * math.ceil(len(names) / cols)),
                             squeeze=False)
    for ax, name in zip(axes.flat, names):
        for state, color in colors.items():
            points = [r for r in scored if r["state"] == state and r[name] is not None]
            ax.scatter([_axis(r[name]) for r in points], [r["score"] for r in points], c=color, s=18, label=state)
        if name in log_scale:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # the decades alone: legible
        ax.set_xlabel(name)
        ax.set_ylabel(f"selection {metric}")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    _save(fig, folder / "settings.png", plt)
    return ["history.png", "settings.png"]


def _axis(value):
    return str(value) if isinstance(value, (str, bool)) else value


def _save(fig, path, plt) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_atomically(path, buffer.getvalue())
