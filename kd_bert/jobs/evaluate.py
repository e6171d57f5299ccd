"""evaluate.py's job: scoring models on one split, one pass over the data per model, plus what a
user weighs before shipping a student: how often it agrees with its teacher, how calibrated it is,
how big and how fast, and what ONNX Runtime and int8 change; or top-k labels for given texts. A regression
model (one output, a score) is scored by Pearson and Spearman correlation and MSE instead, follows its
teacher by the MSE and correlation between their scores, and prints a score for a given text."""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig, EvalConfig, is_default
from ..data.batching import (
    MODEL,
    TEACHER,
    EncodedSplit,
    Encoding,
    encode_for_models,
    eval_loader,
)
from ..data.labels import (
    check_label_names,
    declared_label_names,
    has_scores,
)
from ..data.read import RawData, TextSplit, normalize_split, read_text
from ..data.splits import eval_sample, load_data, to_text_split
from ..deploy.onnx import (
    ONNX_INT8,
    OnnxClassifier,
    describe,
    export,
    is_onnx_folder,
    quantize,
    require_onnxruntime,
)
from ..errors import UserError
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
from ..results import EvalResult
from ..safety.atomic import save_folder_atomically, write_json, write_text_atomically
from ..safety.preflight import check_file, check_folder, check_not_read, reads_of
from ..scoring.metrics import (
    classification_metrics,
    expected_calibration_error,
    format_report,
    regression_metrics,
    softmax,
)
from ..scoring.prediction import predict_logits
from ..scoring.report import write_evaluation_report
from ..task import Task
from ..train.accelerator import make_accelerator
from ..train.precision import Precision, resolve_precision
from ..log import show

log = logging.getLogger(__name__)


def evaluate(cfg: EvalConfig, data: DataConfig | None = None) -> EvalResult:
    """Score --model on one split: metrics when it has labels, GLUE-style predictions when not.
    With --teacher, the teacher is scored on the same split and the two are compared side by side;
    with --export_onnx, the model is exported and ONNX Runtime's logits checked against PyTorch's; with
    --quantize, an int8 ONNX version of the model is scored next to it. With --text or --input_file,
    print the top-k labels of those texts instead. Returns every metric printed, and the files written."""
    data = data or DataConfig()
    check_outputs(cfg, data)
    if cfg.text or cfg.input_file:
        return predict_texts(cfg, data)
    resolve_model(cfg.model, "--model")
    if cfg.teacher:
        resolve_model(cfg.teacher, "--teacher")
    check_max_length(data.max_length, [(cfg.model, "--model")] + ([(cfg.teacher, "--teacher")] if cfg.teacher else []))
    precision = resolve_precision(cfg.mixed_precision)
    accelerator = make_accelerator(precision, 1)
    onnx_model = Path(cfg.model).is_dir() and is_onnx_folder(cfg.model)
    if cfg.export_onnx and onnx_model:
        raise UserError(f"--export_onnx: --model {cfg.model} is an ONNX model already; export from the PyTorch model")
    if cfg.export_onnx or cfg.quantize or onnx_model:
        require_onnxruntime()  # before the data and the models load
    label_names = label_names_of(load_config(cfg.model, "--model"))
    task = Task.of(label_names)
    if cfg.teacher:
        teacher_names = label_names_of(load_config(cfg.teacher, "--teacher"))
        if Task.of(teacher_names).regression != task.regression:
            raise UserError(f"the teacher {cfg.teacher} is {Task.of(teacher_names).describe()} and the student "
                            f"{cfg.model} is {task.describe()}; compare models of the same task")
        check_label_names(teacher_names, label_names, f"the student {cfg.model}",
                          declared_by=f"the teacher {cfg.teacher}")
    data, trained_split = held_out_as_trained(cfg.model, data)
    # A lone file is scored whole, unless this model was trained on it: then what its run held out.
    raw, columns = load_data(data, whole_lone_file=trained_split is None)
    check_held_out(cfg, data, raw, trained_split)
    if not task.regression:  # a regression model may score whole-number labels as numbers
        check_task(label_names, has_scores(raw, columns), f"the model {cfg.model}", data.data_path)
    check_label_names(declared_label_names(raw, data.label_names), label_names, f"the model {cfg.model}")
    split_name = next(iter(raw.splits)) if len(raw.splits) == 1 else cfg.split
    split = to_text_split(raw, split_name, columns, label_names, need_labels=False,
                          required_by="pass --split with one of them", sample=eval_sample(data.max_eval_samples),
                          labels_from=f"the model {cfg.model}")
    if split.labels is None and not cfg.predictions_file:
        file = default_predictions_file(cfg, split.name)
        check_file(file, f"the predictions file {file}", "predictions.tsv",
                   "give --predictions_file a path you can write to")
    sources = {MODEL: (cfg.model, "--model")}
    if cfg.teacher:
        sources[TEACHER] = (cfg.teacher, "--teacher")
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
    if not accelerator.is_main_process:
        return EvalResult({})
    results[MODEL]["dropped_rows"] = raw.dropped.get(split.name, 0)
    if onnx_model:
        precision = onnx_precision(cfg.model, precision)
    return _report(cfg, data, split, results, logits, task, accelerator, precision)


def trained_with(model: str) -> dict:
    """The settings a local model folder's training run recorded (training_args.json); {} without one."""
    from .job import ARGS_FILE  # the file the training jobs write

    args = _recorded(model, ARGS_FILE).get("args")
    return args if isinstance(args, dict) else {}


def _recorded(model: str, name: str) -> dict:
    """A JSON file a training run wrote into the model folder; {} when it is missing or unreadable."""
    try:
        doc = json.loads((Path(model) / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def held_out_as_trained(model: str, data: DataConfig) -> tuple[DataConfig, float | None]:
    """The data settings with the --validation_split the model was trained with, when the flag is left
    at its default and the model trained on this --data_path: data with no validation split then has
    the examples the training run held out carved again, never ones it trained on. Also returns the
    recorded fraction (None when the model records none for this data)."""
    args = trained_with(model)
    recorded = args.get("validation_split")
    if not isinstance(recorded, (int, float)) or isinstance(recorded, bool) or not _same_data(args.get("data_path"),
                                                                                              data.data_path):
        return data, None
    if recorded and _validated_on_nothing(model):
        recorded = 0  # e.g. a lone file, which was once trained on whole whatever --validation_split said
    if is_default(data.validation_split) and recorded != data.validation_split:
        data = replace(data, validation_split=float(recorded))
    return data, float(recorded)


def _validated_on_nothing(model: str) -> bool:
    """Whether the model's run recorded a validation split of no example (metrics.json): it trained on
    all of its data, whatever fraction its training_args.json records."""
    from .job import METRICS_FILE

    return _recorded(model, METRICS_FILE).get("eval_examples") == 0


def _same_data(recorded, data_path: str) -> bool:
    if not isinstance(recorded, str):
        return False
    local = [Path(p).expanduser() for p in (recorded, data_path)]
    if all(p.exists() for p in local):
        return local[0].resolve() == local[1].resolve()
    return recorded == data_path


def check_held_out(cfg: EvalConfig, data: DataConfig, raw: RawData, trained_split: float | None) -> None:
    """Say which examples a carved validation split holds when the model records its own run's fraction
    (see held_out_as_trained), loudly when they are not the ones that run held out; refuse to score a
    validation split of data the model trained on whole (--validation_split 0)."""
    if trained_split is None:
        return
    if raw.carved is None:
        asked = normalize_split(cfg.split) == "validation"
        if trained_split == 0 and asked and "validation" not in raw.splits and "train" in raw.splits:
            raise UserError(f"{cfg.model} was trained on all of the train split of {data.data_path} "
                            f"(its run held out none: --validation_split 0 in training_args.json, or no validation example in "
                            f"metrics.json), which has no validation split: no example is "
                            f"held out to score. Give data with a validation split, or pass --split train to score "
                            f"training examples")
        return
    if raw.carved != trained_split:
        log.warning(f"--validation_split {raw.carved} differs from the {trained_split} that {cfg.model} was trained "
            f"with (training_args.json), so some of the examples scored are ones it trained on; leave the flag out to "
            f"score the examples its run held out")
    elif trained_split != DataConfig.validation_split:
        log.info(f"the {trained_split:.0%} held out is the fraction {cfg.model} was trained with (training_args.json)")


def computed_in(source: str, precision: Precision) -> str:
    """What computes a model's logits and in which precision: "pytorch bf16", "onnxruntime int8" (an ONNX
    folder runs as it was saved, whatever --mixed_precision says)."""
    if Path(source).is_dir() and is_onnx_folder(source):
        return onnx_computed_in(source)
    return f"pytorch {precision.computes_in}"


def onnx_computed_in(folder: str | Path) -> str:
    return f"onnxruntime {describe(folder).get('precision', 'fp32')}"


def onnx_precision(folder: str, precision: Precision) -> Precision:
    """The precision recorded for an ONNX folder scored as --model: no autocast, the graph's own."""
    return Precision("no", f"ONNX Runtime runs the {describe(folder).get('precision', 'fp32')} graph as saved; "
                           f"--mixed_precision applies to PyTorch models", precision.requested)


def runtime_name(computed: str) -> str:
    """ "pytorch bf16" as printed: "PyTorch bf16"."""
    runtime, _, dtype = computed.partition(" ")
    return f"{ {'pytorch': 'PyTorch', 'onnxruntime': 'ONNX Runtime'}.get(runtime, runtime)} {dtype}"


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
    logits, seconds = score(model, encoding, split.labels, cfg.batch_size, accelerator)
    result = summarize(logits, seconds, split.labels, task)
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
        show(log, format_report(result))
    predictions_file = cfg.predictions_file
    if predictions_file is None and split.labels is None:
        predictions_file = str(default_predictions_file(cfg, split.name))
    files = {}
    if predictions_file:
        _write_predictions(predictions_file, split, task.predictions(logits[MODEL]))
        result["predictions_file"] = files["predictions"] = predictions_file
    if split.labels is None:
        show(log, f"the '{split.name}' split has no labels, so no metrics were computed; wrote {len(split)} "
                  f"predictions (index<TAB>prediction, GLUE submission form) to {predictions_file}")
    log.info(f"{len(split)} examples in {result['eval_seconds']:.2f}s: {result['examples_per_second']:.1f} examples/s "
             f"on {result['device']}, batch size {cfg.batch_size}, {precision.describe()}")
    table = None
    if cfg.teacher:
        table = format_side_by_side(result["teacher"], result, comparison, task, cfg.batch_size)
        show(log, f"\nteacher {cfg.teacher} and student {cfg.model} on the same {len(split)} examples "
                  f"({result['device']}; teacher in {runtime_name(result['teacher']['computed_in'])}, student in "
                  f"{runtime_name(result['computed_in'])}):")
        show(log, table)
    if "onnx" in result or "quantized" in result:
        show(log, "\n" + format_onnx(result, task))
    for key in ("onnx", "quantized"):
        if "saved_to" in result.get(key, {}):
            files[key] = result[key]["saved_to"]
    if cfg.report_dir:
        names = {MODEL: "student" if cfg.teacher else "model", TEACHER: "teacher"}
        written = write_evaluation_report(cfg.report_dir, result, {names[r]: v for r, v in logits.items()},
                                          split.labels, table)
        log.info(f"report written to {cfg.report_dir}: {', '.join(written)}")
        files["report"] = cfg.report_dir
    if cfg.output:
        write_json(cfg.output, result)
        log.info(f"metrics written to {cfg.output}")
        files["output"] = cfg.output
    return EvalResult(result, {name: Path(path) for name, path in files.items()})


def format_onnx(result: dict, task: Task) -> str:
    """The model next to its ONNX Runtime export and int8 version, whichever were made."""
    columns = [("model", result)] + [(name, result[key]) for name, key in (("onnx fp32", "onnx"), ("onnx int8",
                                                                                                   "quantized"))
                                     if key in result]

    def cell(r: dict, key: str, fmt: str) -> str:
        return format(r[key], fmt) if key in r else "-"

    regression = task.regression
    quality = [("pearson", "pearson", ".4f"), ("spearman", "spearman", ".4f"), ("mse", "mse", ".4f")] \
        if regression else [("accuracy", "accuracy", ".4f"), ("f1", "f1", ".4f")]
    follows = ("pearson with model", "pearson_with_fp32", ".4f") if regression \
        else ("agreement with model", "agreement_with_fp32", ".2%")
    rows = quality + [follows, ("latency p50 (ms)", "latency_p50_ms", ".2f"),
                      ("examples/s", "examples_per_second", ".0f"), ("size on disk (MB)", "size_on_disk_mb", ".1f")]

    def versus(r: dict) -> str:  # which two precisions a check compares: a model scored in bf16 is no fp32 reference
        closeness = f"pearson {r['pearson_with_fp32']:.4f}" if regression \
            else f"predictions agree on {r['agreement_with_fp32']:.2%}"
        return f"{runtime_name(r['computed_in'])} vs {runtime_name(r['compared_with'])}: {closeness}"

    lines = []
    if "onnx" in result:
        lines.append(f"ONNX export written to {result['onnx']['saved_to']}; {versus(result['onnx'])}, logits differ "
                     f"by at most {result['onnx']['max_abs_logit_diff']:.2e}")
    if "quantized" in result:
        fused = ", ".join(f"{n} {k}" for k, n in result["quantized"]["fused"].items()) or "none"
        lines.append(f"int8: ONNX Runtime dynamic quantization after fusing ({fused}); {versus(result['quantized'])}")
    lines.append(f"{'':<22}" + "".join(f"{name:>12}" for name, _ in columns))
    lines += [f"{label:<22}" + "".join(f"{cell(r, key, fmt):>12}" for _, r in columns) for label, key, fmt in rows]
    return "\n".join(lines)


def predict_texts(cfg: EvalConfig, data: DataConfig) -> EvalResult:
    """The top-k labels and their probabilities for each --text and each line of --input_file; the
    predicted score for a regression model."""
    texts = list(cfg.text or [])
    if cfg.input_file:
        path = Path(cfg.input_file)
        if not path.is_file():
            raise UserError(f"--input_file {cfg.input_file}: no such file; give a text file with one text per line")
        texts += [line.strip() for line in read_text(path, f"--input_file {cfg.input_file}").splitlines()
                  if line.strip()]
    if not texts:
        raise UserError("no text to classify: --text is empty and --input_file has no non-blank line")
    resolve_model(cfg.model, "--model")
    check_max_length(data.max_length, [(cfg.model, "--model")])
    precision = resolve_precision(cfg.mixed_precision)
    accelerator = make_accelerator(precision, 1)
    tokenizer = load_tokenizer(cfg.model, "--model")
    model = accelerator.prepare_model(load_classifier(cfg.model, "--model"), evaluation_mode=True)
    names = label_names_of(accelerator.unwrap_model(model).config)
    encoding = encode_for_models(texts, {MODEL: tokenizer}, data.max_length)[MODEL]
    logits, _ = score(model, encoding, None, cfg.batch_size, accelerator)
    predictions = _scored_texts(texts, logits) if Task.of(names).regression \
        else _top_k(texts, logits, names, cfg.top_k)
    if not accelerator.is_main_process:
        return EvalResult({}, predictions=predictions)
    for p in predictions:
        show(log, p["text"])
        if "score" in p:
            show(log, f"  score {p['score']:.3f}")
        for choice in p.get("top_k", []):
            show(log, f"  {choice['probability']:7.2%}  {choice['label']}")
    if cfg.output:
        write_json(cfg.output, {"model": cfg.model, "computed_in": computed_in(cfg.model, precision),
                                "predictions": predictions})
        log.info(f"predictions written to {cfg.output}")
    return EvalResult({"model": cfg.model}, {"output": Path(cfg.output)} if cfg.output else {}, predictions)


def _top_k(texts: list[str], logits: np.ndarray, names: list[str], top_k: int) -> list[dict]:
    probs = softmax(logits)
    k = min(top_k, probs.shape[1])
    predictions = []
    for text, row in zip(texts, probs):
        best = np.argsort(-row, kind="stable")[:k]
        predictions.append({"text": text, "top_k": [{"label": names[i], "probability": float(row[i])} for i in best]})
    return predictions


def _scored_texts(texts: list[str], logits: np.ndarray) -> list[dict]:
    """A regression model's one output is the prediction itself: no softmax, no top-k."""
    return [{"text": text, "score": float(row[0])} for text, row in zip(texts, logits)]


def _write_predictions(path: str, split: TextSplit, predictions: np.ndarray) -> None:
    """GLUE submission form: a header, then index<TAB>predicted label id (or score, for a regression
    model: float predictions), one line per example."""
    scores = np.issubdtype(predictions.dtype, np.floating)
    lines = ["index\tprediction"] + [f"{i}\t{float(p):.4f}" if scores else f"{i}\t{int(p)}"
                                      for i, p in zip(split.index, predictions)]
    write_text_atomically(path, "\n".join(lines) + "\n")

WARMUP_EXAMPLES = 3  # batch-1 forwards run before timing: the first calls allocate and pick kernels


def score(model, encoding: Encoding, labels: list[int] | None, batch_size: int, accelerator) -> tuple[np.ndarray, float]:
    """(logits in split order, seconds): one length-sorted pass under inference_mode, timed after a
    forward pass on one batch, so the first model scored does not also pay for warming up."""
    split = EncodedSplit({MODEL: encoding}, labels)
    loader = accelerator.prepare(eval_loader(split, batch_size))
    with torch.inference_mode():
        model(**next(iter(loader))[MODEL])
    _sync(accelerator.device)
    start = time.perf_counter()
    logits = predict_logits(model, loader, accelerator)
    _sync(accelerator.device)
    return logits, time.perf_counter() - start


def latency_ms(model, encoding: Encoding, samples: int, device) -> dict[str, float]:
    """Batch-1 latency of the model's forward pass over the split's first `samples` examples, each
    at its own length (no padding): the median and 95th percentile in milliseconds."""
    rows = list(range(min(samples, len(encoding.input_ids))))
    if not rows:
        return {}
    times = []
    warmup = rows[:WARMUP_EXAMPLES]
    model.eval()
    with torch.inference_mode():
        for i, row in enumerate(warmup + rows):
            inputs = _one_example(encoding, row, device)
            _sync(device)
            start = time.perf_counter()
            model(**inputs)
            _sync(device)
            if i >= len(warmup):
                times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"latency_p50_ms": statistics.median(times),
            "latency_p95_ms": times[min(len(times) - 1, int(0.95 * len(times)))],
            "latency_examples": len(times)}


def summarize(logits: np.ndarray, seconds: float, labels: list[int] | list[float] | None, task: Task) -> dict:
    """Metrics from one model's logits (when the split has labels) and its throughput."""
    result = {"examples_per_second": len(logits) / max(seconds, 1e-9), "eval_seconds": seconds}
    if labels is not None and task.regression:  # no classes: no calibration either
        result.update(regression_metrics(labels, logits[:, 0]))
    elif labels is not None:
        result.update(classification_metrics(labels, logits.argmax(-1), list(task.label_names)))
        result["expected_calibration_error"] = expected_calibration_error(softmax(logits), labels)
    return result


def model_facts(model, source: str) -> dict:
    """Parameters and, for a local folder, the size of its weight files."""
    facts = {"num_parameters": count_parameters(model)}
    if Path(source).is_dir():
        facts["size_on_disk_mb"] = size_on_disk(source) / 2**20
    return facts


def format_side_by_side(teacher: dict, student: dict, comparison: dict, task: Task, batch_size: int) -> str:
    """Teacher and student as two columns, ratios against the teacher where they help."""
    def metric(key: str):
        return lambda r: f"{r[key]:.4f}" if key in r else "-"

    regression = task.regression
    quality = [(key, metric(key)) for key in ("pearson", "spearman", "mse")] if regression else [
        ("accuracy", metric("accuracy")), ("f1", metric("f1")),
        ("calibration error", lambda r: f"{r['expected_calibration_error']:.4f}" if "accuracy" in r else "-")]
    rows = [
        ("parameters", lambda r: f"{r['num_parameters'] / 1e6:.1f}M"),
        ("size on disk", lambda r: f"{r['size_on_disk_mb']:.1f} MB" if "size_on_disk_mb" in r else "-"),
        *quality,
        ("latency p50/p95", lambda r: f"{r['latency_p50_ms']:.1f}/{r['latency_p95_ms']:.1f} ms"
            if "latency_p50_ms" in r else "-"),
        (f"examples/s @{batch_size}", lambda r: f"{r['examples_per_second']:.0f}"),
    ]
    lines = [f"{'':<22}{'teacher':>16}{'student':>16}{'student/teacher':>18}"]
    ratios = {
        "parameters": student["num_parameters"] / teacher["num_parameters"],
        f"examples/s @{batch_size}": student["examples_per_second"] / teacher["examples_per_second"],
    }
    if "size_on_disk_mb" in teacher and "size_on_disk_mb" in student:
        ratios["size on disk"] = student["size_on_disk_mb"] / teacher["size_on_disk_mb"]
    if "latency_p50_ms" in teacher and "latency_p50_ms" in student:
        ratios["latency p50/p95"] = student["latency_p50_ms"] / teacher["latency_p50_ms"]
    for label, cell in rows:
        ratio = f"{ratios[label]:.2f}x" if label in ratios else ""
        lines.append(f"{label:<22}{cell(teacher):>16}{cell(student):>16}{ratio:>18}")
    if regression:
        lines.append(f"the student's scores correlate with the teacher's at Pearson "
                     f"{comparison['pearson_with_teacher']:.4f}; MSE between them "
                     f"{comparison['mse_teacher_to_student']:.4f}")
    else:
        lines.append(f"the student predicts the teacher's label on {comparison['agreement']:.1%} of examples; "
                     f"KL(teacher || student) {comparison['kl_teacher_to_student']:.4f} nats per example")
    return "\n".join(lines)


def _one_example(encoding: Encoding, row: int, device) -> dict[str, torch.Tensor]:
    inputs = {"input_ids": torch.tensor([encoding.input_ids[row]], device=device)}
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if encoding.token_type_ids is not None:
        inputs["token_type_ids"] = torch.tensor([encoding.token_type_ids[row]], device=device)
    return inputs


def _sync(device) -> None:
    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize(device)
