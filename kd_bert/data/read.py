"""Reading a --data_path into named splits of raw columns.

A data path is one of:
  * a folder written by `datasets`' save_to_disk: a DatasetDict (has dataset_dict.json) or a
    single Dataset (has state.json), e.g. ./data/sst2/test;
  * a folder of files named by split: train.tsv, dev.tsv, test.tsv (GLUE), or in another format of
    formats.py (.csv, .json, .jsonl, .parquet);
  * one such file (one split);
  * a hub dataset name (`name` or `name:config`), when the hub is reachable.
Split names are normalized (dev -> validation). The readers keep each row's line for messages and
record the rows they cannot read as bad rows (see splits.drop_bad_rows); what becomes of the
columns, splits and labels is splits.py's and labels.py's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError, clip, listed
from ..hub import hub_offline, looks_like_path, probe
from ..registries.formats import (
    EXTENSIONS,
    RawSplit,
    is_data_file,
    named_columns,
    read_file,
    read_text,
)

SPLIT_ALIASES = {
    "dev": "validation",
    "valid": "validation",
    "val": "validation",
    "eval": "validation",
    "evaluation": "validation",
    "training": "train",
    "testing": "test",
}


LABEL_NAMES_FILE = "labels.txt"


# Preferred when a column flag is left to auto-detection, in this order.
TEXT_COLUMN_NAMES = ("sentence", "text", "content", "review", "utterance", "query", "question", "document")


LABEL_COLUMN_NAMES = ("label", "labels", "class", "target", "intent", "category", "score")  # score: GLUE's STS-B


# Sentence-pair columns detected when --text_column is not given (GLUE's and other common names);
# checked before single text columns, so QNLI's question/sentence never loses its question.
PAIR_COLUMN_NAMES = (("sentence1", "sentence2"), ("premise", "hypothesis"), ("question1", "question2"),
                     ("question", "sentence"), ("text_a", "text_b"), ("text1", "text2"))


INDEX_COLUMN_NAMES = ("idx", "index", "id", "guid")


def normalize_split(name: str) -> str:
    name = name.strip().lower()
    return SPLIT_ALIASES.get(name, name)



@dataclass
class RawData:
    source: str
    splits: dict[str, RawSplit]
    label_names: list[str] | None = None  # from labels.txt
    # A lone file or saved split whose name is no split name (reviews.csv): its one split is train, and a
    # validation split is carved from it as from any train split; evaluate.py scores it whole, unless its
    # model was trained on it (see splits.load_data).
    lone_file: bool = False
    on_bad_rows: str = "error"  # what a bad row does to the run: error, warn (drop and list) or skip (drop)
    dropped: dict[str, int] = field(default_factory=dict)  # bad rows dropped, by split, for metrics.json
    carved: float | None = None  # the fraction of train held out as the validation split (carve_validation)


@dataclass
class Columns:
    text: str
    label: str | None  # None: no split has labels
    index: str | None
    pair: str | None = None  # the second text of a sentence-pair task


@dataclass
class TextSplit:
    """What the models see: texts (and second texts for a pair task), label ids or, for a regression
    task, float scores (None for an unlabeled split), and example ids."""

    name: str
    texts: list[str]
    labels: list[int] | list[float] | None
    index: list = field(default_factory=list)
    pairs: list[str] | None = None
    # When a sample was drawn from the split (--max_train_samples): each label id's count in the whole
    # split, which says what classes the data has, whatever the sample holds.
    drawn_from: Counter | None = None

    def __len__(self) -> int:
        return len(self.texts)


TRANSFER_FLAG = "--transfer_data"  # it takes what --data_path takes, and a .txt file of texts too


def load_raw(data_path: str, flag: str = "--data_path") -> RawData:
    """`flag` names the setting the path came from, for messages."""
    path = Path(data_path).expanduser()
    txt = " or .txt (one text per line)" if flag == TRANSFER_FLAG else ""
    if path.is_dir():
        return _load_folder(path, flag)
    if path.is_file():
        if not is_data_file(path):
            raise UserError(
                f"{flag} {data_path}: unsupported file type '{path.suffix}'; "
                f"use one of {', '.join(EXTENSIONS)}{txt}, or a folder"
            )
        return RawData(str(path), {_split_name_of(path.stem): read_file(path)}, _read_label_names(path.parent),
                       lone_file=not _is_split_name(path.stem))
    if _looks_local(data_path) or (txt and path.suffix.lower() == ".txt"):
        example = "./unlabeled.txt" if txt else "./data/sst2"
        raise UserError(f"{flag} {data_path}: no such file or folder; check the path (e.g. {example})")
    splits = load_hub_dataset(data_path, flag)
    return RawData(data_path, {normalize_split(k): _from_dataset(v) for k, v in splits.items()})


def _looks_local(data_path: str) -> bool:
    """Shaped like a path, or named like a data file: a missing local path, not a hub dataset."""

    return looks_like_path(data_path) or is_data_file(Path(data_path))


def _is_split_name(stem: str) -> bool:
    return normalize_split(stem) in ("train", "validation", "test")


def _split_name_of(stem: str) -> str:
    """A lone file or saved split is named for its stem (test.tsv -> test); any other name is train."""
    return normalize_split(stem) if _is_split_name(stem) else "train"


def _load_folder(path: Path, flag: str) -> RawData:
    if (path / "dataset_dict.json").exists():
        dataset_dict = _load_from_disk(path, flag)
        splits = {normalize_split(k): _from_dataset(v) for k, v in dataset_dict.items()}
        return RawData(str(path), splits, _read_label_names(path))
    if (path / "state.json").exists():
        return RawData(str(path), {_split_name_of(path.name): _from_dataset(_load_from_disk(path, flag))},
                       _read_label_names(path), lone_file=not _is_split_name(path.name))
    files = sorted(p for p in path.iterdir() if p.is_file() and is_data_file(p))
    if not files:
        txt = "; or give a .txt file, one text per line" if flag == TRANSFER_FLAG else ""
        raise UserError(
            f"{flag} {path}: the folder holds no dataset: expected a save_to_disk folder or files "
            f"named by split ({', '.join(f'{name}{EXTENSIONS[0]}' for name in ('train', 'dev', 'test'))}; or "
            f"{'/'.join(EXTENSIONS[1:])}){txt}"
        )
    splits: dict[str, RawSplit] = {}
    for file in files:
        name = normalize_split(file.stem)
        if name in splits:
            raise UserError(f"{flag} {path}: two files give split '{name}'; keep one of them")
        splits[name] = read_file(file)
    return RawData(str(path), splits, _read_label_names(path))


def _load_from_disk(path: Path, flag: str):
    datasets = quiet_datasets()
    try:
        return datasets.load_from_disk(str(path))
    except Exception as exc:  # corrupt arrow files, version mismatch
        raise UserError(f"{flag} {path}: cannot read this saved dataset ({clip(exc, 120)}); re-create it with "
                        f"save_to_disk") from exc


def _from_dataset(dataset) -> RawSplit:
    """A `datasets.Dataset` as columns of Python values, keeping ClassLabel names."""
    from datasets import (
        ClassLabel,  # loaded by now: only a saved or hub dataset gets here
    )

    class_names = None
    for name, feature in dataset.features.items():
        if isinstance(feature, ClassLabel) and name in LABEL_COLUMN_NAMES + ("label",):
            class_names = list(feature.names)
            break
    if class_names is None:
        labels = [f for f in dataset.features.values() if isinstance(f, ClassLabel)]
        if len(labels) == 1:
            class_names = list(labels[0].names)
    return named_columns(RawSplit(dataset.to_dict(), class_names))


def _read_label_names(folder: Path) -> list[str] | None:
    file = folder / LABEL_NAMES_FILE
    if not file.is_file():
        return None
    names = [line.strip() for line in read_text(file, str(file)).splitlines() if line.strip()]
    return names or None



def get_split(raw: RawData, split: str, *, required_by: str) -> RawSplit:
    name = normalize_split(split)
    if name not in raw.splits:
        raise UserError(
            f"{raw.source} has no '{name}' split (it has: {listed(raw.splits)}); {required_by}"
        )
    return raw.splits[name]


def load_hub_dataset(name: str, flag: str = "--data_path"):
    """A hub dataset (`name` or `name:config`) as a DatasetDict, failing fast when offline."""
    datasets = quiet_datasets()
    repo, _, config = name.partition(":")
    if hub_offline():
        # datasets reads HF_HUB_OFFLINE once, at import; say it again so only the cache is tried.
        datasets.config.HF_HUB_OFFLINE = True
    else:
        problem = probe("dataset", repo)
        if problem is not None:
            raise UserError(
                f"{flag} {name}: not a local file or folder, and the hub dataset {problem}; "
                f"pass a local folder such as ./data/sst2"
            )
    try:
        return datasets.load_dataset(repo, config or None)
    except Exception as exc:
        raise UserError(
            f"{flag} {name}: not a local file or folder, and the hub dataset could not be loaded "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); pass a local folder such as ./data/sst2"
        ) from exc


def quiet_datasets():
    """The `datasets` module, imported only where a saved or hub dataset is read (it costs ~0.5 s
    at start-up), with its progress bars and info logs off."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    return datasets
