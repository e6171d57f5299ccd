"""The package's output: library code logs, the entry layer (or an API user) decides what shows.

Every module logs through `logging.getLogger(__name__)`, under the "kd_bert" logger. Out of the box
its records go to standard output as bare lines, which is what the scripts print: INFO and up, a
warning prefixed "warning: ", and only on the main process of a distributed run (the others would
repeat every line). `set_verbosity("warning")` quiets the progress lines (the scripts' --quiet) but never the results a
command exists to print (`show()`, level RESULT, above WARNING),
`set_verbosity("debug")` adds the detail lines (--verbose). An application with logging of its own
calls `use_logging_config()`: the records then propagate to its handlers, and this module prints
nothing itself.

    import logging, kd_bert
    kd_bert.log.set_verbosity(logging.WARNING)   # a notebook that wants only warnings
"""

from __future__ import annotations

import logging
import os
import sys

LOGGER = "kd_bert"
# What a command exists to print (evaluate.py's metrics and predictions, where a model was saved, a sweep's
# best trial): above WARNING, so --quiet, which hides progress, still shows it. Printed bare, like INFO.
RESULT = logging.WARNING + 5
logging.addLevelName(RESULT, "RESULT")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def is_main_process() -> bool:
    """Whether this is the launch's first process (global rank 0), read from the launcher's environment
    (torchrun and accelerate launch set RANK; MPI launchers their own): asking Accelerate would set up its
    distributed state before the job's Accelerator does. The one answer every module asks."""
    for name in ("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK"):
        if os.environ.get(name, "").strip().isdigit():
            return int(os.environ[name]) == 0
    return True


class _Lines(logging.Formatter):
    """The message as the scripts print it: bare, a warning marked as one."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return f"warning: {message}" if record.levelno == logging.WARNING else message


class _MainProcessStdout(logging.StreamHandler):
    """Standard output as it is when a record is written (a test or a notebook may replace sys.stdout),
    on the main process only."""

    def __init__(self):
        super().__init__()
        self.setFormatter(_Lines())
        self.addFilter(lambda record: is_main_process())

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):  # logging.StreamHandler sets it in __init__; standard output is always read anew
        pass


_handler = _MainProcessStdout()
_logger = logging.getLogger(LOGGER)
_logger.addHandler(_handler)
_logger.setLevel(logging.INFO)
_logger.propagate = False


def show(logger: logging.Logger, message: str) -> None:
    """A line the command exists to print: shown under --quiet too."""
    logger.log(RESULT, message)


def set_verbosity(level: int | str) -> None:
    """The least severe records shown: logging.DEBUG/INFO/WARNING/ERROR, or their names."""
    _logger.setLevel(LEVELS[level.lower()] if isinstance(level, str) else level)


def verbosity() -> int:
    return _logger.level


def shows_progress() -> bool:
    """Progress bars follow the verbosity: --quiet hides them too."""
    return _logger.level <= logging.INFO


def use_logging_config() -> None:
    """Hand the records to the application's own logging configuration instead of printing them."""
    _logger.removeHandler(_handler)
    _logger.propagate = True
