"""The accuracy-speed frontier of a sweep run with --objectives accuracy,latency: which student to ship.

Every finished trial's student is measured as each way it can be shipped, a point of its own:
  pytorch    the model as saved, in the run's precision (bf16 autocast where `auto` picks it);
  onnx-int8  its ONNX export quantized to int8 by ONNX Runtime (where onnxruntime is installed).
A point has a score on the selection split (the trial's own for pytorch; the int8 model's predictions
scored again for onnx-int8), a batch-1 latency (median and 95th percentile over a fixed set of
sentences from the data, each at its own length) and a batch-64 throughput over the same sentences.

A point is on the front when no other point is at least as accurate and at least as fast, and better in
one of the two. During the sweep the front is kept from each trial's own timing, and only the students
with a point on it stay on disk. At the end those candidates and the teacher are timed again together,
round after round in turns (interleaved), so that no point owes its place to a moment the machine was
busy; the front is drawn again from those timings, each of its points scored once on the validation
split, and written to frontier.md, frontier.csv, frontier.json and frontier.png.
"""

from __future__ import annotations

import csv
import io
import logging
import platform
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..safety.atomic import write_atomically, write_json, write_text_atomically
from .report import FORMATS

log = logging.getLogger(__name__)

PYTORCH, ONNX_INT8 = FORMATS
INT8_FOLDER = "onnx-int8"  # inside a trial's folder, beside its student
BATCH = 64  # the batch size whose throughput each point records


@dataclass
class Point:
    """One way to ship one trial's student, as measured."""

    trial: int
    format: str
    student: str  # what the student is: "first_layers:3", "bilstm", the trial's student flags
    selection: float  # its score on the selection split, as the sweep compares trials (higher is better here)
    p50_ms: float
    p95_ms: float
    per_second: float  # sentences per second at batch BATCH
    parameters: int
    size_mb: float
    validation: float | None = None
    retimed: bool = False

    @property
    def key(self) -> tuple[int, str]:
        return self.trial, self.format

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def dominates(a: Point, b: Point) -> bool:
    """a is at least as accurate and as fast as b, and better in one."""
    return (a.selection >= b.selection and a.p50_ms <= b.p50_ms
            and (a.selection > b.selection or a.p50_ms < b.p50_ms))


def pareto(points: list[Point]) -> list[Point]:
    """The points no other point dominates, fastest first."""
    return sorted((p for p in points if not any(dominates(q, p) for q in points)), key=lambda p: (p.p50_ms, p.trial))


def choose(front: list[Point], teacher_validation: float, max_drop: float) -> Point | None:
    """--max_drop X: the fastest point of the front whose validation score is within X points (X / 100 of a
    score between 0 and 1) of the teacher's; None when none is."""
    ok = [p for p in front if p.validation is not None and p.validation >= teacher_validation - max_drop / 100 - 1e-12]
    return min(ok, key=lambda p: (p.p50_ms, -p.validation)) if ok else None


@dataclass
class Bench:
    """What measures the points of every trial: the data's splits, the fixed timing sentences, the accelerator."""

    data: object  # DataConfig
    train: object  # TrainConfig
    label_names: list[str]
    metric: str
    maximize: bool
    samples: int
    onnx: bool
    _raw: tuple | None = None
    _splits: dict = field(default_factory=dict)  # the splits read, by what draws them

    def __post_init__(self):
        from ..task import Task
        from ..train.accelerator import make_accelerator
        from ..train.precision import resolve_precision

        self.task = Task.of(self.label_names)
        self.precision = resolve_precision(self.train.mixed_precision)
        self.accelerator = make_accelerator(self.precision, 1)

    def raw(self):
        if self._raw is None:
            from ..data.splits import load_data

            self._raw = load_data(self.data)
        return self._raw

    def selection_split(self, train):
        """The selection split a trial with these training flags held out (its --seed and
        --max_train_samples draw the training rows it is carved from)."""
        from ..data.splits import carve_selection, to_text_split, train_sample

        key = (train.max_train_samples, train.seed, train.selection_split)
        if key not in self._splits:
            raw, columns = self.raw()
            split = to_text_split(raw, "train", columns, self.task, need_labels=True, required_by="",
                                  sample=train_sample(train.max_train_samples, train.seed))
            self._splits[key] = carve_selection(split, train.selection_split, self.task.stratified)[1]
        return self._splits[key]

    def validation_split(self):
        """The labeled validation split (None without one), read once."""
        from ..data.splits import eval_sample, to_text_split

        if "validation" not in self._splits:
            raw, columns = self.raw()
            split = None
            if "validation" in raw.splits:
                split = to_text_split(raw, "validation", columns, self.task, need_labels=False, required_by="",
                                      sample=eval_sample(self.data.max_eval_samples))
            self._splits["validation"] = split if split is not None and split.labels is not None else None
        return self._splits["validation"]

    def timing_split(self):
        """The fixed sentences every point is timed on: the first --timing_samples of the validation split
        (of the selection split when there is none)."""
        split = self.validation_split() or self.selection_split(self.train)
        n = min(self.samples, len(split))
        return split.texts[:n], None if split.pairs is None else split.pairs[:n]

    def score(self, model, tokenizer, split) -> float:
        """The model's score on a labeled split, from its predictions, as a higher-is-better number."""
        from ..data.batching import encode
        from ..scoring.latency import timed_logits

        encoding = encode(tokenizer, split.texts, self.data.max_length, split.pairs)
        logits, _ = timed_logits(model, encoding, split.labels, self.train.eval_batch_size, self.accelerator)
        value = self.task.metrics(split.labels, logits)[self.metric]
        return value if self.maximize else -value

    def load(self, folder: Path, fmt: str):
        """(model ready to score, tokenizer, parameters, size in MiB) of one point's files."""
        from ..deploy.onnx import OnnxClassifier
        from ..models.load import count_parameters, load_classifier, load_tokenizer, size_on_disk

        tokenizer = load_tokenizer(str(folder), "--model")
        if fmt == ONNX_INT8:
            model = OnnxClassifier(folder)
            return model, tokenizer, model.num_weights, size_on_disk(folder) / 2**20
        model = load_classifier(str(folder), "--model")
        parameters = count_parameters(model)
        return self.accelerator.prepare_model(model, evaluation_mode=True), tokenizer, parameters, \
            size_on_disk(folder) / 2**20

    def timing_encoding(self, tokenizer):
        from ..data.batching import encode

        texts, pairs = self.timing_split()
        return encode(tokenizer, texts, self.data.max_length, pairs)

    def time_once(self, model, encoding) -> tuple[list[float], float]:
        """(batch-1 milliseconds of each timing sentence, batch-BATCH sentences per second), one round."""
        from ..scoring.latency import batch1_times, timed_logits

        times = batch1_times(model, encoding, len(encoding.input_ids), self.accelerator.device)
        _, seconds = timed_logits(model, encoding, None, BATCH, self.accelerator)
        return times, len(encoding.input_ids) / max(seconds, 1e-9)


def trial_points(bench: Bench, trial: int, trial_dir: Path, student: str, selection: float, train) -> list[Point]:
    """The points of one finished trial: its student in PyTorch and, where onnxruntime is installed, as ONNX
    int8 (exported and quantized into <trial_dir>/onnx-int8, its selection score computed from its own
    predictions). A student that cannot be exported gets its PyTorch point alone, and the log says why."""
    folder = trial_dir / "student"
    points = [_point(bench, trial, folder, PYTORCH, student, selection if bench.maximize else -selection)]
    if bench.onnx:
        try:
            _export_int8(bench, folder, trial_dir / INT8_FOLDER)
            loaded = bench.load(trial_dir / INT8_FOLDER, ONNX_INT8)
            score = bench.score(loaded[0], loaded[1], bench.selection_split(train))
            points.append(_point(bench, trial, trial_dir / INT8_FOLDER, ONNX_INT8, student, score, loaded))
        except Exception as exc:  # a student the exporter or the quantizer cannot take: its PyTorch point alone
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning(f"trial {trial}: no ONNX int8 point ({first[:200]})")
    return points


def _point(bench: Bench, trial: int, folder: Path, fmt: str, student: str, selection: float,
           loaded: tuple | None = None) -> Point:
    """One point, timed; `loaded` is bench.load's answer for these files where the caller has it already."""
    model, tokenizer, parameters, size = loaded or bench.load(folder, fmt)
    times, per_second = bench.time_once(model, bench.timing_encoding(tokenizer))
    return Point(trial, fmt, student, selection, statistics.median(times), _p95(times), per_second, parameters, size)


def _export_int8(bench: Bench, student: Path, folder: Path) -> None:
    from ..deploy.onnx import export, quantize
    from ..models.load import load_classifier, load_tokenizer
    from ..safety.atomic import save_folder_atomically

    model, tokenizer = load_classifier(str(student), "--model"), load_tokenizer(str(student), "--model")
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32"
        fp32.mkdir()
        export(model, tokenizer, fp32, str(student))
        save_folder_atomically(folder, lambda out: quantize(fp32, out))


def _p95(times: list[float]) -> float:
    from ..scoring.latency import p95

    return p95(sorted(times))


@dataclass
class Teacher:
    name: str
    selection: float
    validation: float | None
    p50_ms: float
    p95_ms: float
    per_second: float
    parameters: int
    size_mb: float | None


def retime(bench: Bench, candidates: list[tuple[Point, Path]], teacher: str | None, rounds: int,
           train) -> tuple[list[Point], Teacher | None]:
    """The candidates (each point with its folder) and the teacher timed again together: in each of
    `rounds` rounds every model is timed once, the order turned by one each round, so that a busy spell
    of the machine falls on all of them alike. A point's batch-1 p50 is the median of its rounds' medians,
    its p95 taken over every round's times, its batch-64 throughput the median of its rounds'. The
    validation score of each candidate and the teacher's scores are computed here, once."""
    validation = bench.validation_split()
    models = []
    for point, folder in candidates:
        model, tokenizer, _, _ = bench.load(folder, point.format)
        if validation is not None:
            point.validation = bench.score(model, tokenizer, validation)
        models.append((point, model, bench.timing_encoding(tokenizer)))
    teacher_row = None
    if teacher:
        from ..models.load import count_parameters, load_classifier, load_tokenizer, size_on_disk

        tokenizer = load_tokenizer(teacher, "--teacher_model")
        raw_model = load_classifier(teacher, "--teacher_model")
        parameters = count_parameters(raw_model)
        model = bench.accelerator.prepare_model(raw_model, evaluation_mode=True)
        teacher_row = Teacher(teacher, bench.score(model, tokenizer, bench.selection_split(train)),
                              bench.score(model, tokenizer, validation) if validation is not None else None,
                              0.0, 0.0, 0.0, parameters,
                              size_on_disk(teacher) / 2**20 if Path(teacher).is_dir() else None)
        models.append((teacher_row, model, bench.timing_encoding(tokenizer)))
    medians = {id(m[0]): [] for m in models}
    pooled = {id(m[0]): [] for m in models}
    speeds = {id(m[0]): [] for m in models}
    for r in range(rounds):
        turn = r % len(models)
        for entry, model, encoding in models[turn:] + models[:turn]:
            times, per_second = bench.time_once(model, encoding)
            medians[id(entry)].append(statistics.median(times))
            pooled[id(entry)].extend(times)
            speeds[id(entry)].append(per_second)
    for entry, _, _ in models:
        entry.p50_ms = statistics.median(medians[id(entry)])
        entry.p95_ms = _p95(pooled[id(entry)])
        entry.per_second = statistics.median(speeds[id(entry)])
        if isinstance(entry, Point):
            entry.retimed = True
    return [m[0] for m in models if isinstance(m[0], Point)], teacher_row


def machine() -> str:
    """The CPU, as the pages name it: its model, whether it has native bf16, its cores."""
    import os

    from ..train.precision import cpu_bf16_flags, cpu_name

    flags = cpu_bf16_flags()
    native = f" with {', '.join(flags)}" if flags else " without native bf16" if flags is not None else ""
    return f"{cpu_name()}{native}, {os.cpu_count()} cores"


def write(folder: Path, every: list[Point], front: list[Point], teacher: Teacher | None, bench: Bench, rounds: int,
          chosen: Point | None, why: str) -> None:
    """frontier.md, frontier.csv (every point, the front marked), frontier.json and frontier.png."""
    on_front = {p.key for p in front}
    metric = bench.metric
    precision = bench.precision.computes_in
    header = (f"# The accuracy-speed frontier\n\nMeasured on {machine()}; PyTorch in {precision}, ONNX int8 in "
              f"ONNX Runtime. Latency: batch 1 over the same {bench.samples} sentences of the data, each at its own "
              f"length; throughput: batch {BATCH} over them. The front was timed again together with the teacher, "
              f"in {rounds} interleaved rounds. Scores: {metric} on the selection split (which picked the front; held "
              f"out of the students' training, not necessarily of the teacher's) and on the validation split (scored "
              f"once, after).\n\n")
    cells = ["trial", "student", "format", f"selection {metric}", f"validation {metric}", "batch-1 p50 ms",
             "batch-1 p95 ms", f"batch-{BATCH} sentences/s", "parameters", "size MiB", "speed-up over the teacher"]
    lines = ["| " + " | ".join(cells) + " |", "|" + "---|" * len(cells)]
    for p in front:
        speed = f"{teacher.p50_ms / p.p50_ms:.1f}x" if teacher and p.p50_ms else ""
        lines.append(f"| {p.trial} | {p.student} | {p.format} | {_pct(p.selection, bench)} | "
                     f"{_pct(p.validation, bench)} | {p.p50_ms:.2f} | {p.p95_ms:.2f} | {p.per_second:.0f} | "
                     f"{p.parameters:,} | {p.size_mb:.1f} | {speed} |")
    if teacher:
        lines.append(f"| teacher | {teacher.name} | pytorch | {_pct(teacher.selection, bench)} | "
                     f"{_pct(teacher.validation, bench)} | {teacher.p50_ms:.2f} | {teacher.p95_ms:.2f} | "
                     f"{teacher.per_second:.0f} | {teacher.parameters:,} | "
                     f"{'' if teacher.size_mb is None else f'{teacher.size_mb:.1f}'} | 1.0x |")
    text = header + "\n".join(lines) + "\n"
    if why:
        text += f"\n{why}\n"
    write_text_atomically(folder / "frontier.md", text)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = list(Point.__dataclass_fields__)
    writer.writerow([*names, "on_front"])
    for p in sorted(every, key=lambda p: p.key):
        writer.writerow([*(getattr(p, n) if getattr(p, n) is not None else "" for n in names), p.key in on_front])
    write_text_atomically(folder / "frontier.csv", out.getvalue())
    write_json(folder / "frontier.json", {
        "machine": machine(), "precision": precision, "metric": metric, "timing_sentences": bench.samples,
        "rounds": rounds, "points": [p.as_dict() | {"on_front": p.key in on_front} for p in every],
        "front": [list(p.key) for p in front], "teacher": None if teacher is None else teacher.__dict__,
        "chosen": None if chosen is None else list(chosen.key), "why": why})
    chart(folder / "frontier.png", every, front, teacher, metric)


def _pct(value: float | None, bench: Bench) -> str:
    if value is None:
        return ""
    value = value if bench.maximize else -value
    return f"{100 * value:.2f}" if bench.metric in ("accuracy", "f1", "precision", "recall") else f"{value:.4f}"


def chart(path: Path, every: list[Point], front: list[Point], teacher: Teacher | None, metric: str) -> None:
    """Every point (batch-1 latency on a log axis, selection score), the front drawn through its points,
    the teacher marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for fmt, marker, color in ((PYTORCH, "o", "tab:blue"), (ONNX_INT8, "s", "tab:green")):
        shown = [p for p in every if p.format == fmt]
        if shown:
            ax.scatter([p.p50_ms for p in shown], [p.selection for p in shown], marker=marker, c=color, s=22,
                       alpha=0.6, label=f"trials, {fmt}")
    if front:
        ax.step([p.p50_ms for p in front], [p.selection for p in front], where="post", c="tab:orange",
                label="front (timed again together)")
        ax.scatter([p.p50_ms for p in front], [p.selection for p in front], c="tab:orange", s=30, zorder=3)
    if teacher:
        ax.scatter([teacher.p50_ms], [teacher.selection], marker="*", c="tab:red", s=160, label="teacher", zorder=4)
    ax.set_xscale("log")
    ax.set_xlabel("batch-1 latency, p50 (ms, log scale)")
    ax.set_ylabel(f"selection {metric}")
    ax.set_title("accuracy against speed")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_atomically(path, buffer.getvalue())


def points_of(trials) -> list[Point]:
    """The points recorded on the study's complete trials."""
    out = []
    for trial in trials:
        if trial.state.name == "COMPLETE":
            out += [Point(**p) for p in trial.user_attrs.get("points", [])]
    return out
