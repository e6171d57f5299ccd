"""The model card (README.md) in every saved model folder: metadata the Hub reads, the numbers of the
files beside it, a command that gives back the run's settings, and a usage snippet that works."""

import json
import re
import shlex

import pytest
from helpers import distilled_student, parser_of

yaml = pytest.importorskip("yaml")  # installed with transformers; the card itself is written without it


@pytest.fixture(scope="module")
def student(tmp_path_factory, sst2_slice, trained_teacher, tiny_models):
    """A student whose flags the card's command must carry: non-default weights, a negated boolean, a list."""
    return distilled_student(tmp_path_factory.mktemp("card-student"), sst2_slice, trained_teacher, tiny_models,
                             "--alpha", "0.7", "--temperature", "3", "--no-group_by_length", "--label_names",
                             "negative,positive")


def read_card(folder) -> tuple[dict, str]:
    text = (folder / "README.md").read_text(encoding="utf-8")
    _, front, body = text.split("---\n", 2)
    return yaml.safe_load(front), body


def card_metric_values(meta: dict) -> dict:
    [result] = meta["model-index"][0]["results"]
    return {m["type"]: m["value"] for m in result["metrics"]}


def code_block(body: str, language: str) -> str:
    return re.search(rf"```{language}\n(.*?)```", body, re.S).group(1)


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_card_metadata_matches_the_folder(role, trained_teacher, student):
    folder = {"teacher": trained_teacher, "student": student}[role]
    meta, body = read_card(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    settings = json.loads((folder / "training_args.json").read_text())["args"]
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-classification"
    start = settings["model_name_or_path"] if role == "teacher" else settings["student_model"]
    assert meta["base_model"] == start
    assert meta["datasets"] == [settings["data_path"]]
    assert {"knowledge-distillation", role} <= set(meta["tags"])
    # the kept epoch's validation numbers, exactly
    assert card_metric_values(meta) == {k: metrics["validation"][k] for k in ("accuracy", "f1", "precision", "recall")}
    assert f"| accuracy | {metrics['validation']['accuracy']:.4f} |" in body
    assert f"epoch {metrics['best_epoch']}" in body
    weights = (folder / "model.safetensors").stat().st_size
    assert f"| weights on disk | {weights / 1e6:.1f} MB |" in body
    assert f"evaluate.py --model {folder}" in body


def test_student_card_names_its_teacher_and_loss(student, trained_teacher):
    _, body = read_card(student)
    assert f"distilled from the teacher `{trained_teacher}`" in body
    assert "`0.7 * kd_kl(T=3) + 0.3 * ce`" in body and "alpha 0.7" in body and "temperature 3" in body


@pytest.mark.parametrize("role, script", [("teacher", "trainer_teacher.py"), ("student", "distilled-bert.py")])
def test_card_command_gives_back_the_run_settings(role, script, trained_teacher, student):
    folder = {"teacher": trained_teacher, "student": student}[role]
    _, body = read_card(folder)
    words = shlex.split(code_block(body, "bash").replace("\\\n", ""))  # line continuations, as bash joins them
    assert words[:2] == ["python", script]
    parsed = vars(parser_of(script).parse_args(words[2:]))
    for name in ("debug", "quiet", "verbose"):  # how much the run prints, never recorded
        parsed.pop(name)
    parsed.pop("config")  # read before the run, never recorded
    # through JSON, as training_args.json holds them
    assert json.loads(json.dumps(parsed)) == json.loads((folder / "training_args.json").read_text())["args"]
    if role == "student":
        assert "--no-group_by_length" in words and "negative,positive" in words


def test_card_usage_snippet_classifies(student):
    from transformers import AutoConfig

    _, body = read_card(student)
    namespace = {}
    exec(code_block(body, "python"), namespace)  # as a user pastes it; it prints one prediction
    [prediction] = namespace["classify"](["a dull , lifeless mess"])
    assert prediction["label"] in AutoConfig.from_pretrained(student).id2label.values()


def test_card_is_the_one_its_records_make(trained_teacher):
    """The card is rebuilt from the folder's own final records, so it describes the kept epoch."""
    from kd_bert.deploy.model_card import model_card
    from kd_bert.models.load import size_on_disk

    metrics = json.loads((trained_teacher / "metrics.json").read_text())
    settings = json.loads((trained_teacher / "training_args.json").read_text())["args"]
    expected = model_card("teacher", settings, metrics, "1 * ce", size_on_disk(trained_teacher))
    assert (trained_teacher / "README.md").read_text(encoding="utf-8") == expected


def test_regression_card():
    from kd_bert.deploy.model_card import model_card

    settings = {"data_path": "./data/sts b", "output_dir": "./models", "model_name_or_path": "bert-base-uncased",
                "learning_rate": 2e-5, "batch_size": 32, "max_length": 128, "seed": 42, "label_names": None}
    metrics = {"role": "teacher", "label_names": ["score"], "num_parameters": 4_386_561, "train_examples": 5749,
               "eval_examples": 1500, "metric_for_best_model": "pearson", "best_epoch": 2,
               "validation": {"pearson": 0.8812, "spearman": 0.8790, "mse": 1e-05, "loss": 0.5, "num_examples": 1500},
               "history": [{}, {}, {}]}
    card = model_card("teacher", settings, metrics, "1 * mse", 17_600_000)
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["pipeline_tag"] == "text-classification" and "regression" in meta["tags"]
    assert meta["datasets"] == ["./data/sts b"] and meta["base_model"] == "bert-base-uncased"
    assert card_metric_values(meta) == {"pearson": 0.8812, "spearman": 0.8790, "mse": 1e-05}
    assert "accuracy" not in card and "predicted score" in card and "epoch 2 of 3" in card
    assert "`1 * mse`" in card and "17.6 MB" in card
    assert "--data_path './data/sts b'" in card  # quoted for the shell
