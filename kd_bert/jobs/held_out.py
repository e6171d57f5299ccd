"""Which examples a model's own training run held out, read from what the run recorded in the model folder
(training_args.json, metrics.json): evaluate.py carves the same validation split again from data that has
none, and refuses to score as validation the examples a run trained on."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from ..config import DataConfig, EvalConfig, is_default
from ..data.read import RawData, normalize_split
from ..errors import UserError

log = logging.getLogger(__name__)


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
