"""evaluate.py's job: scoring models on one split, one pass over the data per model, plus what a
user weighs before shipping a student: how often it agrees with its teacher, how calibrated it is,
how big and how fast, and what ONNX Runtime and int8 change; or the predictions for given texts.

The job composes; each part lives where it belongs: the metrics, the predictions and what the run's task
shows of them in its Task (task.py), timing in scoring/latency.py, the printed tables in scoring/tables.py,
report.md and its charts in scoring/report.py, the export and int8 versions in deploy/onnx.py, and which
examples a model's own run held out in jobs/held_out.py."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from ..config import DataConfig, EvalConfig
from ..data.batching import MODEL, TEACHER, Encoding, encode_for_models
from ..data.labels import check_label_names, declared_label_names, has_scores
from ..data.read import RawData, TextSplit
from ..data.splits import eval_sample, load_data, to_text_split
from ..deploy.onnx import (
    ONNX_INT8,
    OnnxClassifier,
    describe,
    export,
    is_onnx_folder,
    onnx_computed_in,
    precision_of,
    quantize,
    require_onnxruntime,
)
from ..errors import UserError
from ..log import show
from ..models.hub import resolve_model
from ..models.load import (
    check_max_length,
    check_task,
    count_parameters,
    label_names_of,
    load_classifier,
    load_config,
    load_tokenizer,
    size_on_disk,
)
from ..registries.formats import read_text
from ..results import EvalResult
from ..safety.atomic import save_folder_atomically, write_json, write_text_atomically
from ..safety.preflight import check_file, check_folder, check_not_read, reads_of
from ..scoring.latency import latency_ms, throughput, timed_logits
from ..scoring.prediction import predictions_tsv
from ..scoring.report import write_evaluation_report
from ..scoring.tables import format_onnx, format_side_by_side, runtime_name
from ..task import Task
from ..train.accelerator import make_accelerator
from ..train.precision import Precision, resolve_precision
from .held_out import check_held_out, held_out_as_trained

log = logging.getLogger(__name__)


def evaluate(cfg: EvalConfig, data: DataConfig | None = None) -> EvalResult:
    """Score --model on one split: metrics when it has labels, GLUE-style predictions when not.
    With --teacher, the teacher is scored on the same split and the two are compared side by side;
    with --export_onnx, the model is exported and ONNX Runtime's logits checked against PyTorch's; with
    --quantize, an int8 ONNX version of the model is scored next to it. With --text or --input_file,
    print the predictions for those texts instead. Returns every metric printed, and the files written."""
    data = data or DataConfig()
    check_outputs(cfg, data)
    if cfg.text or cfg.input_file:
        return predict_texts(cfg, data)
    sources = {MODEL: (cfg.model, "--model")}
    if cfg.teacher:
        sources[TEACHER] = (cfg.teacher, "--teacher")
    for path, flag in sources.values():
        resolve_model(path, flag)
    check_max_length(data.max_length, list(sources.values()))
    precision = resolve_precision(cfg.mixed_precision)
    accelerator = make_accelerator(precision, 1)
    onnx_model = Path(cfg.model).is_dir() and is_onnx_folder(cfg.model)
    if cfg.export_onnx and onnx_model:
        raise UserError(f"--export_onnx: --model {cfg.model} is an ONNX model already; export from the PyTorch model")
    if cfg.export_onnx or cfg.quantize or onnx_model:
        require_onnxruntime()  # before the data and the models load
    task = task_of(cfg)
    data, raw, split = split_to_score(cfg, data, task)
    results, logits = _score_models(cfg, data, split, sources, task, accelerator, precision)
    if not accelerator.is_main_process:
        return EvalResult({})
    results[MODEL]["dropped_rows"] = raw.dropped.get(split.name, 0)
    if onnx_model:
        precision = onnx_precision(cfg.model, precision)
    return _report(cfg, data, split, results, logits, task, accelerator, precision)


def task_of(cfg: EvalConfig) -> Task:
    """The task of --model, read from its config; a --teacher must be of the same task, with the same labels."""
    task = Task.of(label_names_of(load_config(cfg.model, "--model")))
    if cfg.teacher:
        teacher = Task.of(label_names_of(load_config(cfg.teacher, "--teacher")))
        if teacher.kind != task.kind:
            raise UserError(f"the teacher {cfg.teacher} is {teacher.describe()} and the student "
                            f"{cfg.model} is {task.describe()}; compare models of the same task")
        check_label_names(list(teacher.label_names), list(task.label_names), f"the student {cfg.model}",
                          declared_by=f"the teacher {cfg.teacher}")
    return task


def split_to_score(cfg: EvalConfig, data: DataConfig, task: Task) -> tuple[DataConfig, RawData, TextSplit]:
    """The data settings (with the fraction the model's run held out, see held_out_as_trained), the data
    read and the split scored, its labels checked against the model's."""
    data, trained_split = held_out_as_trained(cfg.model, data)
    # A lone file is scored whole, unless this model was trained on it: then what its run held out.
    raw, columns = load_data(data, whole_lone_file=trained_split is None)
    check_held_out(cfg, data, raw, trained_split)
    label_names = list(task.label_names)
    check_task(label_names, has_scores(raw, columns), f"the model {cfg.model}", data.data_path, training=False)
    check_label_names(declared_label_names(raw, data.label_names), label_names, f"the model {cfg.model}")
    split_name = next(iter(raw.splits)) if len(raw.splits) == 1 else cfg.split
    split = to_text_split(raw, split_name, columns, task, need_labels=False,
                          required_by="pass --split with one of them", sample=eval_sample(data.max_eval_samples),
                          labels_from=f"the model {cfg.model}")
    if split.labels is None and not cfg.predictions_file:
        file = default_predictions_file(cfg, split.name)
        check_file(file, f"the predictions file {file}", "predictions.tsv",
                   "give --predictions_file a path you can write to")
    return data, raw, split


def _score_models(cfg: EvalConfig, data: DataConfig, split: TextSplit, sources: dict, task: Task, accelerator,
                  precision: Precision) -> tuple[dict, dict]:
    """Each model (and the ONNX versions of --model) scored on the split: (results, logits) by role."""
    tokenizers = {role: load_tokenizer(path, flag) for role, (path, flag) in sources.items()}
    # Tokenized once when the tokenizers match.
    encodings = encode_for_models(split.texts, tokenizers, data.max_length, split.pairs)
    results, logits = {}, {}
    for role, (path, flag) in sources.items():
        model = load_classifier(path, flag)
        facts = model_facts(model, path)
        model = accelerator.prepare_model(model, evaluation_mode=True)
        logits[role], results[role] = _score_one(model, encodings[role], split, task, cfg, accelerator)
        results[role] = {"model": path, "computed_in": computed_in(path, precision), **facts, **results[role]}
        if role == MODEL and (cfg.export_onnx or cfg.quantize):
            results.update(_score_onnx(accelerator.unwrap_model(model), tokenizers[MODEL], encodings[MODEL],
                                       split, task, logits[MODEL], results[MODEL]["computed_in"], cfg,
                                       accelerator))
        del model  # one model in memory at a time
    return results, logits


def computed_in(source: str, precision: Precision) -> str:
    """What computes a model's logits and in which precision: "pytorch bf16", "onnxruntime int8" (an ONNX
    folder runs as it was saved, whatever --mixed_precision says)."""
    if Path(source).is_dir() and is_onnx_folder(source):
        return onnx_computed_in(source)
    return f"pytorch {precision.computes_in}"


def onnx_precision(folder: str, precision: Precision) -> Precision:
    """The precision recorded for an ONNX folder scored as --model: no autocast, the graph's own."""
    return Precision("no", f"ONNX Runtime runs the {precision_of(folder)} graph as saved; "
                           f"--mixed_precision applies to PyTorch models", precision.requested)


def check_outputs(cfg: EvalConfig, data: DataConfig | None = None) -> None:
    """Before anything is loaded: every file and folder evaluate.py will write can be written, none of
    them is or lies inside what the run reads (the models, the data, --input_file), and an export
    folder, which is replaced as a whole, holds no model other than an earlier export."""
    reads = reads_of(model=cfg.model, teacher=cfg.teacher, data_path=data.data_path if data else None,
                     input_file=cfg.input_file)
    models = tuple(name for name in reads if name.startswith(("--model ", "--teacher ")))
    if cfg.output:
        check_file(cfg.output, f"--output {cfg.output}")
        check_not_read(cfg.output, f"--output {cfg.output}", reads)
    if cfg.predictions_file:
        check_file(cfg.predictions_file, f"--predictions_file {cfg.predictions_file}", "predictions.tsv")
        # Beside the model, as the default predictions file is, under a name no model file has.
        beside = models if Path(cfg.predictions_file).name.startswith("predictions") else ()
        check_not_read(cfg.predictions_file, f"--predictions_file {cfg.predictions_file}", reads,
                       allow_inside=beside)
    if cfg.report_dir:
        check_folder(cfg.report_dir, f"--report_dir {cfg.report_dir}")
        check_not_read(cfg.report_dir, f"--report_dir {cfg.report_dir}", reads)
    exports = {flag: Path(folder) for flag, folder in (("--export_onnx", cfg.export_onnx),
                                                       ("--save_quantized", cfg.save_quantized)) if folder}
    for flag, folder in exports.items():
        check_folder(folder, f"{flag} {folder}")
        if folder.resolve() in {Path(source).resolve() for source in (cfg.model, cfg.teacher) if source}:
            raise UserError(f"{flag} {folder} is a model this run reads; give a new folder for the export")
        check_not_read(folder, f"{flag} {folder}", reads, whole=True)
        if folder.is_dir() and any(folder.iterdir()) and not is_onnx_folder(folder):
            raise UserError(f"{flag} {folder} holds other files, which the export would replace; give a new or "
                            f"empty folder, or an earlier export")
    if len(exports) == 2 and len({folder.resolve() for folder in exports.values()}) == 1:
        raise UserError(f"--export_onnx and --save_quantized are both {cfg.export_onnx}; give each its own folder")
    if len(exports) == 2:  # each folder is replaced as a whole, so one inside the other would be deleted
        for inner, outer in (("--export_onnx", "--save_quantized"), ("--save_quantized", "--export_onnx")):
            if exports[inner].resolve().is_relative_to(exports[outer].resolve()):
                raise UserError(f"{inner} {exports[inner]} is inside {outer} {exports[outer]}, which is replaced as "
                                f"a whole; give each its own folder, neither inside the other")


def default_predictions_file(cfg: EvalConfig, split_name: str) -> Path:
    """Where an unlabeled split's predictions go without --predictions_file: beside the model."""
    folder = Path(cfg.model) if Path(cfg.model).is_dir() else Path(".")
    return folder / f"predictions_{split_name}.tsv"


def _score_one(model, encoding: Encoding, split: TextSplit, task: Task, cfg: EvalConfig,
               accelerator) -> tuple[np.ndarray, dict]:
    """One model's logits on the split, its throughput, its metrics when the split has labels, and its
    batch-1 latency when asked."""
    logits, seconds = timed_logits(model, encoding, split.labels, cfg.batch_size, accelerator)
    result = throughput(len(logits), seconds)
    if split.labels is not None:
        result.update(task.metrics(split.labels, logits))
    if cfg.latency_samples > 0:
        result.update(latency_ms(model, encoding, cfg.latency_samples, accelerator.device))
    return logits, result


def _score_onnx(model, tokenizer, encoding: Encoding, split: TextSplit, task: Task, model_logits: np.ndarray,
                model_computed_in: str, cfg: EvalConfig, accelerator) -> dict:
    """--export_onnx: the model exported (in fp32, whatever precision the model was scored in), then scored
    by ONNX Runtime on the same data, its logits checked against the model's ("onnx"); --quantize: the int8
    version of that export, scored the same way ("quantized"). Each records what it was compared with
    (model_computed_in, "pytorch bf16" say). Without --export_onnx the export goes to a temporary folder."""
    results = {}

    def scored(folder: Path, make=None) -> tuple[np.ndarray, dict]:
        """The ONNX folder (written by `make` first, when given) scored on the split, and how closely it
        follows the model."""
        if make is not None:
            if accelerator.is_main_process:
                save_folder_atomically(folder, make)
            accelerator.wait_for_everyone()
        logits, result = _score_one(OnnxClassifier(folder), encoding, split, task, cfg, accelerator)
        return logits, {"computed_in": onnx_computed_in(folder), "compared_with": model_computed_in,
                        "size_on_disk_mb": size_on_disk(folder) / 2**20, **result,
                        **task.follows(model_logits, logits)}

    with tempfile.TemporaryDirectory() as tmp:
        fp32_folder = Path(cfg.model)
        if not is_onnx_folder(cfg.model):
            fp32_folder = Path(cfg.export_onnx or Path(tmp) / "fp32")
            if accelerator.is_main_process:
                save_folder_atomically(fp32_folder, lambda folder: export(model, tokenizer, folder, cfg.model))
            accelerator.wait_for_everyone()
        if cfg.export_onnx:
            logits, result = scored(fp32_folder)
            results["onnx"] = {"saved_to": cfg.export_onnx, **result,
                               "max_abs_logit_diff": float(np.abs(logits - model_logits).max())}
        if cfg.quantize:
            int8_folder = Path(cfg.save_quantized or Path(tmp) / "int8")
            _, result = scored(int8_folder, lambda folder: quantize(fp32_folder, folder))
            results["quantized"] = {"method": ONNX_INT8, "fused": describe(int8_folder).get("fused", {}), **result}
            if cfg.save_quantized:
                results["quantized"]["saved_to"] = cfg.save_quantized
    return results


def _report(cfg: EvalConfig, data: DataConfig, split: TextSplit, results: dict, logits: dict, task: Task, accelerator,
            precision) -> EvalResult:
    """The result document, printed, and written where asked (predictions, report, --output)."""
    result = {
        **results[MODEL],
        "data_path": data.data_path,
        "split": split.name,
        "num_examples": len(split),
        "labeled": split.labels is not None,
        "batch_size": cfg.batch_size,
        "device": str(accelerator.device),
        **precision.to_json(),
    }
    comparison = task.compare(logits[TEACHER], logits[MODEL]) if cfg.teacher else {}
    if cfg.teacher:
        result["teacher"] = results[TEACHER]
        result.update(comparison)
    for key in ("onnx", "quantized"):
        if key in results:
            result[key] = results[key]
    if split.labels is not None:
        show(log, f"{cfg.model} on the '{split.name}' split of {data.data_path}")
        show(log, task.format_metrics(result))
    files = _write_predictions(cfg, split, task, logits[MODEL], result)
    log.info(f"{len(split)} examples in {result['eval_seconds']:.2f}s: {result['examples_per_second']:.1f} examples/s "
             f"on {result['device']}, batch size {cfg.batch_size}, {precision.describe()}")
    table = _show_tables(cfg, split, result, comparison, task)
    for key in ("onnx", "quantized"):
        if "saved_to" in result.get(key, {}):
            files[key] = result[key]["saved_to"]
    if cfg.report_dir:
        names = {MODEL: "student" if cfg.teacher else "model", TEACHER: "teacher"}
        written = write_evaluation_report(cfg.report_dir, result, {names[r]: v for r, v in logits.items()},
                                          split.labels, table, task)
        log.info(f"report written to {cfg.report_dir}: {', '.join(written)}")
        files["report"] = cfg.report_dir
    if cfg.output:
        write_json(cfg.output, result)
        log.info(f"metrics written to {cfg.output}")
        files["output"] = cfg.output
    return EvalResult(result, {name: Path(path) for name, path in files.items()})


def _write_predictions(cfg: EvalConfig, split: TextSplit, task: Task, logits: np.ndarray, result: dict) -> dict:
    """The predictions file, when asked or when the split has no labels (GLUE submission form: the task
    formats each prediction). Returns the files written."""
    predictions_file = cfg.predictions_file
    if predictions_file is None and split.labels is None:
        predictions_file = str(default_predictions_file(cfg, split.name))
    files = {}
    if predictions_file:
        write_text_atomically(predictions_file, predictions_tsv(split.index, task.formatted_predictions(logits)))
        result["predictions_file"] = files["predictions"] = predictions_file
    if split.labels is None:
        show(log, f"the '{split.name}' split has no labels, so no metrics were computed; wrote {len(split)} "
                  f"predictions (index<TAB>prediction, GLUE submission form) to {predictions_file}")
    return files


def _show_tables(cfg: EvalConfig, split: TextSplit, result: dict, comparison: dict, task: Task) -> str | None:
    """Teacher beside student, and the model beside its ONNX versions, printed; returns the first table."""
    table = None
    if cfg.teacher:
        table = format_side_by_side(result["teacher"], result, comparison, task, cfg.batch_size)
        show(log, f"\nteacher {cfg.teacher} and student {cfg.model} on the same {len(split)} examples "
                  f"({result['device']}; teacher in {runtime_name(result['teacher']['computed_in'])}, student in "
                  f"{runtime_name(result['computed_in'])}):")
        show(log, table)
    if "onnx" in result or "quantized" in result:
        show(log, "\n" + format_onnx(result, task))
    return table


def predict_texts(cfg: EvalConfig, data: DataConfig) -> EvalResult:
    """The predictions for each --text and each line of --input_file, as the model's task makes them: the
    top-k labels and their probabilities, or the predicted score of a regression model."""
    texts = texts_given(cfg)
    resolve_model(cfg.model, "--model")
    check_max_length(data.max_length, [(cfg.model, "--model")])
    precision = resolve_precision(cfg.mixed_precision)
    accelerator = make_accelerator(precision, 1)
    tokenizer = load_tokenizer(cfg.model, "--model")
    model = accelerator.prepare_model(load_classifier(cfg.model, "--model"), evaluation_mode=True)
    task = Task.of(label_names_of(accelerator.unwrap_model(model).config))
    encoding = encode_for_models(texts, {MODEL: tokenizer}, data.max_length)[MODEL]
    logits, _ = timed_logits(model, encoding, None, cfg.batch_size, accelerator)
    predictions = task.text_predictions(texts, logits, cfg.top_k)
    if not accelerator.is_main_process:
        return EvalResult({}, predictions=predictions)
    for p in predictions:
        show(log, p["text"])
        for line in task.describe_text_prediction(p):
            show(log, line)
    if cfg.output:
        write_json(cfg.output, {"model": cfg.model, "computed_in": computed_in(cfg.model, precision),
                                "predictions": predictions})
        log.info(f"predictions written to {cfg.output}")
    return EvalResult({"model": cfg.model}, {"output": Path(cfg.output)} if cfg.output else {}, predictions)


def texts_given(cfg: EvalConfig) -> list[str]:
    """--text, then the non-blank lines of --input_file."""
    texts = list(cfg.text or [])
    if cfg.input_file:
        path = Path(cfg.input_file)
        if not path.is_file():
            raise UserError(f"--input_file {cfg.input_file}: no such file; give a text file with one text per line")
        texts += [line.strip() for line in read_text(path, f"--input_file {cfg.input_file}").splitlines()
                  if line.strip()]
    if not texts:
        raise UserError("no text to classify: --text is empty and --input_file has no non-blank line")
    return texts


def model_facts(model, source: str) -> dict:
    """Parameters and, for a local folder, the size of its weight files."""
    facts = {"num_parameters": count_parameters(model)}
    if Path(source).is_dir():
        facts["size_on_disk_mb"] = size_on_disk(source) / 2**20
    return facts
