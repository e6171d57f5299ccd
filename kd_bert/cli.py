"""The entry layer: flags generated from the config dataclasses, and errors turned into one line.

A script builds its parser from the configs it takes (add_arguments), parses, builds the configs
from the flags (each validates itself) and calls the Python API; nothing below this layer sees the
parsed flags. A --config file supplies flag values; the command line overrides them.
This module imports no torch: `--help` answers before any heavy import.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import shlex
import shutil
import sys
from dataclasses import fields
from pathlib import Path
from typing import Callable

from .config import (
    DATA,
    INTERMEDIATE,
    LOGITS,
    STUDENT,
    TRAINING,
    TRANSFER,
    Flags,
    comma_list,
    int_list,
    short_repr,
)
from .errors import UserError, is_cuda_out_of_memory
from .log import set_verbosity
from .safety.preflight import check_not_read
from .safety.stopping import Stopped, handled

RESUME = "resume_from_checkpoint"  # the flag a resume command sets to latest
GROUP_ORDER = (DATA, TRAINING, LOGITS, INTERMEDIATE, STUDENT, TRANSFER)  # as --help lists them
# Every script's config flags: a config file's key that is one of them but not this script's is named as such.
ALL_FLAGS = {f.name for config in Flags.__subclasses__() for f in fields(config) if "help" in f.metadata}


def add_arguments(parser: argparse.ArgumentParser, *configs: type, defaults: dict | None = None) -> None:
    """--config, and a flag --NAME for every flag field of the configs: top-level ones in the order given, then the
    groups in GROUP_ORDER, then the top-level flags marked `last` (--mixed_precision). `defaults`
    overrides a field's default for this script (the teacher and the student have different learning
    rates). --config comes first: it can set any of them."""
    parser.add_argument("--config", metavar="FILE",
                        help="read flag values from this YAML or JSON file: a mapping of flag names to values, or a "
                             "training_args.json to repeat its run; flags on the command line override it")
    flag_fields = [f for config in configs for f in fields(config) if "help" in f.metadata]
    titles = {f.metadata["group"] for f in flag_fields}
    groups = {title: parser.add_argument_group(title) for title in GROUP_ORDER if title in titles}
    seen = set()  # a field two configs share (--mixed_precision) is one flag

    def rank(f) -> int:
        group = f.metadata["group"]
        return len(GROUP_ORDER) if f.metadata["last"] else -1 if group is None else GROUP_ORDER.index(group)

    for f in sorted(flag_fields, key=rank):  # a stable sort: the order given within a rank
        if f.name in seen:
            continue
        seen.add(f.name)
        meta = f.metadata
        target = parser if meta["group"] is None else groups[meta["group"]]
        target.add_argument(f"--{f.name}", *meta["aliases"], dest=f.name, help=meta["help"],
                            default=(defaults or {}).get(f.name, f.default), **meta["argparse"])


def add_debug_arg(parser: argparse.ArgumentParser) -> None:
    """--debug, and how much the run prints: --quiet (warnings and errors only) or --verbose (detail too)."""
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("--quiet", action="store_true", help="hide progress lines and bars; results, warnings "
                                                                "and errors still print")
    verbosity.add_argument("--verbose", action="store_true", help="also print detail lines: each split once read "
                           "(columns, size, labels), how the student was built, the teacher-logit cache key, the "
                           "first perturbed copies, the run's plan, the resume point")


def parse(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """The parsed flags: a --config file's values become the parser's defaults, so that the flags
    given on the command line win. A bad file raises UserError."""
    # A first pass finds --config alone; everything else, --help included, waits for the full parser,
    # so that --help shows the file's values as the defaults.
    first = argparse.ArgumentParser(prog=parser.prog, add_help=False)
    first.add_argument("--config")
    path = first.parse_known_args(argv)[0].config
    if path is not None:
        apply_config_file(parser, path)
    flags = parser.parse_args(argv)
    if path is not None:
        _check_config_kept(path, flags)
    return flags


# evaluate.py's outputs: files it writes, and folders it replaces as a whole.
_OUTPUT_FILES, _OUTPUT_FOLDERS = ("output", "predictions_file"), ("export_onnx", "save_quantized")


def _check_config_kept(path: str, flags: argparse.Namespace) -> None:
    """The --config file is read before the run starts; no output of the run may replace it."""
    reads = {f"--config {path}": path}
    for name in _OUTPUT_FILES + _OUTPUT_FOLDERS:
        value = getattr(flags, name, None)
        if value:
            check_not_read(value, f"--{name} {value}", reads, whole=name in _OUTPUT_FOLDERS)


def run(main: Callable[[argparse.Namespace], object], parser: argparse.ArgumentParser, argv=None,
        program: list[str] | None = None) -> None:
    """Parse and run; a UserError (a bad --config file, or a config that cannot work) becomes
    `error: ...` on stderr and exit status 2. SIGINT and SIGTERM stop the run (see stopping.py): a
    line says where and how to resume, and the exit status is 130 or 143."""
    try:
        flags = parse(parser, argv)
    except UserError as exc:
        _fail(exc)
    given = sys.argv[1:] if argv is None else list(argv)
    with handled():  # program: an installed command (["kd-bert", "distill"]), run as it is, with no python
        _run(main, parser, flags, [*program, *given] if program else [sys.argv[0], *given], installed=bool(program))


def _run(main: Callable[[argparse.Namespace], object], parser: argparse.ArgumentParser, flags: argparse.Namespace,
         command: list[str], installed: bool = False) -> None:
    try:
        _quiet_libraries()
        set_verbosity("warning" if getattr(flags, "quiet", False) else "debug" if getattr(flags, "verbose", False)
                      else "info")
        main(flags)
        _leave_process_group()
    except Stopped as stop:  # before KeyboardInterrupt, which it is
        _stopped(stop, command, parser, installed)
    except UserError as exc:
        if flags.debug:
            raise
        _fail(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if flags.debug or not is_cuda_out_of_memory(exc):
            raise
        batch = getattr(flags, "batch_size", 32)
        print(
            f"error: CUDA ran out of memory; try --batch_size {max(1, batch // 2)} "
            f"--gradient_accumulation_steps {2 * getattr(flags, 'gradient_accumulation_steps', 1)} "
            f"(same effective batch), or a shorter --max_length",
            file=sys.stderr,
        )
        sys.exit(2)


def _leave_process_group() -> None:
    """Under torchrun, every process waits for the others and then closes the process group together.
    A process that exits while another still holds its gloo connection can make that one abort (SIGABRT,
    "Connection closed by peer") after its work is done: evaluate's other processes finish first."""
    dist = sys.modules.get("torch.distributed")  # never imports torch for a job that did not
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def resume_command(argv: list[str], parser: argparse.ArgumentParser, installed: bool = False) -> str:
    """The command that continues a stopped run: the script and flags as given (argv in sys.argv's
    form), any --resume_from_checkpoint among them (with or without a value, `=value`, or a prefix
    argparse accepts) replaced by `--resume_from_checkpoint latest`. Latest, not a folder: each run of
    the job (--compare_no_kd trains two) resumes from its own newest checkpoint. `installed`: argv starts
    with an installed command, which runs without python."""
    script, *given = argv
    names = [name for action in parser._actions for name in action.option_strings if name.startswith("--")]
    resume = next(action.option_strings for action in parser._actions if action.dest == RESUME)
    kept, i = [], 0
    while i < len(given):
        token, i = given[i], i + 1
        name, equals, _ = token.partition("=")
        if not _names_option(name, resume, names, parser.allow_abbrev):
            kept.append(token)
        elif not equals and i < len(given) and not given[i].startswith("-"):
            i += 1  # its value
    # Under `accelerate launch` this process cannot see the launcher's options.
    launcher = "accelerate launch [your launch options] " if "LOCAL_RANK" in os.environ else \
        "" if installed else shlex.quote(_python()) + " "
    return f"{launcher}{shlex.join([script, *kept, f'--{RESUME}', 'latest'])}"


def _names_option(name: str, option: list[str], names: list[str], allow_abbrev: bool) -> bool:
    """Whether argparse reads `name` as `option`: one of its names, or the prefix of exactly one flag's."""
    if name in option:
        return True
    matches = [n for n in names if n.startswith(name)] if allow_abbrev and name.startswith("--") and name != "--" \
        else []
    return len(matches) == 1 and matches[0] in option


def _python() -> str:
    """How the command names this interpreter: `python` where that is the one on PATH, else its path."""
    found = shutil.which("python")
    return "python" if found and os.path.abspath(found) == os.path.abspath(sys.executable) else sys.executable


def _stopped(stop: Stopped, command: list[str], parser: argparse.ArgumentParser, installed: bool = False) -> None:
    if stop.announce:  # one process of a distributed run speaks for all
        print(stop.describe(), file=sys.stderr)
        if stop.checkpoint is not None:
            print(f"to resume: {resume_command(command, parser, installed)}", file=sys.stderr)
        elif stop.in_loop:
            print("to be able to resume next time, pass --checkpointing_steps N (every N batches) or epoch",
                  file=sys.stderr)
    sys.exit(stop.exit_code)


def apply_config_file(parser: argparse.ArgumentParser, path: str) -> None:
    """Make a config file's values the parser's defaults, each checked and converted the way its
    flag's command-line text is. A key that is no flag of this script is refused by name."""
    values = read_config_file(path)
    actions = {a.dest: a for a in parser._actions if a.option_strings and a.dest not in ("help", "config")}
    unknown = [str(key) for key in values if key not in actions]
    if unknown:
        raise UserError(f"{path}: {_unknown_keys(unknown, list(actions), Path(parser.prog).name)}")
    parser.set_defaults(**{key: _convert(actions[key], value, f"{path}: {key}") for key, value in values.items()})


# The keys of a training_args.json beside its "args" (see jobs._run_info): what the run was, not flags to set.
RECORD_KEYS = frozenset({"role", "started", "versions", "device", "num_processes", "mixed_precision",
                         "mixed_precision_reason"})
MAX_MESSAGE = 200  # a parser's message quoted in ours is cut to this many characters


def read_config_file(path: str) -> dict:
    """The flag values a .json, .yaml or .yml file holds: a mapping of flag names, or a run's
    training_args.json, whose "args" are the flags of the run it records. A key given twice, a YAML
    alias (which can expand a small file beyond any size) and flag keys beside "args" are refused."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"--config {path}: no such file")
    suffix = file.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise UserError(f"--config {path}: give a .json, .yaml or .yml file")
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as some editors write, is not part of the text
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte {exc.start} is 0x{raw[exc.start]:02x}); save it as UTF-8") \
            from None
    try:
        doc = _parse_json(text, path) if suffix == ".json" else _parse_yaml(text, path)
    except RecursionError:
        raise UserError(f"{path} is nested too deeply to be a mapping of flag names to values") from None
    doc = {} if doc is None else doc  # an empty YAML file sets nothing
    if not isinstance(doc, dict):
        raise UserError(f"{path} must hold a mapping of flag names to values (got a {type(doc).__name__})")
    if not isinstance(doc.get("args"), dict):
        return doc
    beside = [str(key) for key in doc if key != "args" and key not in RECORD_KEYS and key in ALL_FLAGS]
    if beside:
        raise UserError(f"{path} has an \"args\" mapping (as a run's training_args.json has) and flags beside it "
                        f"({_listed(beside)}), which it would override; put every flag in args, or drop args")
    return doc["args"]


def _parse_json(text: str, path: str):
    def no_duplicates(pairs: list[tuple[str, object]]) -> dict:
        keys = [key for key, _ in pairs]
        twice = next((key for key in keys if keys.count(key) > 1), None)
        if twice is not None:
            raise UserError(f"{path}: the key {short_repr(twice)} is given twice; keep one")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON: {_cut(str(exc))}") from None


def _parse_yaml(text: str, path: str):
    try:
        import yaml
    except ImportError:
        raise UserError(f"{path} is YAML, which needs PyYAML: pip install pyyaml (or give a .json file)") from None

    class Loader(yaml.SafeLoader):
        """SafeLoader that refuses aliases (a few lines of nested aliases expand to gigabytes) and keys
        given twice (the last would win silently)."""

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise UserError(f"{path}: line {event.start_mark.line + 1} uses the alias *{_cut(event.anchor, 40)}; a "
                                f"config file takes plain values, without anchors and aliases: write the value out")
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    raise UserError(f"{path}: the key {short_repr(key)} is given twice (lines {seen[key]} and "
                                    f"{line}); keep one")
                if isinstance(key, (str, int, float, bool)):
                    seen[key] = line
            return super().construct_mapping(node, deep)

    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:  # its message spans lines (the line and a caret); the log wants one
        raise UserError(f"{path} is not valid YAML: {_cut(' '.join(str(exc).split()))}") from None


def _cut(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _listed(names: list[str], shown: int = 5) -> str:
    """A few names, then how many more."""
    head = ", ".join(names[:shown])
    return head + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _unknown_keys(keys: list[str], known: list[str], script: str) -> str:
    named = []
    for key in keys:
        close = difflib.get_close_matches(key, known, n=3)
        hint = f"did you mean {' or '.join(close)}?" if close else "a flag of another script" if key in ALL_FLAGS \
            else ""
        named.append(f"{_cut(key, 40)} ({hint})" if hint else _cut(key, 40))
    return f"{'unknown key' if len(keys) == 1 else 'unknown keys'} for {script}: {_listed(named)}"


def _convert(action: argparse.Action, value, name: str):
    """A config file's value for one flag, as the parser would have made it from the command line:
    numbers and text through the flag's type and choices, a list for a flag given several times
    or several values, a list or comma-separated text for a comma-separated flag (--layer_map)."""
    if value is None:
        if action.default is None:  # training_args.json records the flags left unset as null
            return None
        raise UserError(f"{name} needs a value (got null)")
    if action.nargs == 0:  # store_true and --flag/--no-flag
        if not isinstance(value, bool):
            raise UserError(f"{name} must be true or false (got {short_repr(value)})")
        return value
    if isinstance(value, dict) and action.nargs in ("+", "*"):
        value = [_assignment(key, item, name) for key, item in value.items()]  # sweep.py's search: NAME: SPEC
    if action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction):
        return [_convert_one(action, item, name) for item in (value if isinstance(value, list) else [value])]
    if isinstance(value, list) and action.type in (comma_list, int_list):
        value = ",".join(str(item) for item in value)
    return _convert_one(action, value, name)


def _assignment(key, value, name: str) -> str:
    """One NAME: SPEC entry of a mapping as the command line's NAME=SPEC: a list is its choices. A bare
    number is refused: YAML reads 1:8 as the base-60 number 68, so a range must be quoted text."""
    if isinstance(value, list):
        return f"{key}={','.join(str(item) for item in value)}"
    if not isinstance(value, str):
        raise UserError(f"{name}: {short_repr(key)} must be quoted text such as \"1:8\" or a list of choices (got "
                        f"{short_repr(value)}; YAML reads an unquoted 1:8 as the number 68)")
    return f"{key}={value}"


def _convert_one(action: argparse.Action, value, name: str):
    if isinstance(value, bool):
        raise UserError(f"{name} is not a true/false flag (got {short_repr(value)}); YAML reads yes, no, on and off as "
                        f"true or false, so quote such a value")
    if isinstance(value, (list, dict)):
        raise UserError(f"{name} takes one value (got {short_repr(value)})")
    text = str(value)  # a YAML or JSON number becomes the text the command line would have given
    try:
        converted = action.type(text) if action.type is not None else text
    except argparse.ArgumentTypeError as exc:
        raise UserError(f"{name}: {exc}") from None
    except (TypeError, ValueError):
        expected = {int: "an integer", float: "a number"}.get(action.type, "a valid value")
        raise UserError(f"{name} must be {expected} (got {short_repr(value)})") from None
    if action.choices is not None and converted not in action.choices:
        raise UserError(f"{name} must be one of {', '.join(map(str, action.choices))} (got {short_repr(value)})")
    return converted


def or_exit(check: Callable, *args, **kwargs):
    """check(*args, **kwargs) for a script that does not go through run(): a UserError it raises becomes
    `error: ...` on stderr and exit status 2, as in the scripts."""
    try:
        return check(*args, **kwargs)
    except UserError as exc:
        _fail(exc)


def _fail(exc: UserError) -> None:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)


def _quiet_libraries() -> None:
    # Load reports and per-file progress bars drown the training log; errors still show.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # also turns off transformers' own bars
    if "transformers" not in sys.modules:
        # Read when transformers loads: a flag value the configs refuse fails without waiting seconds for it.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        return
    import transformers  # already loaded (a script run inside a Python session): set it directly

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
