"""Stopping a run on SIGINT or SIGTERM without losing its work.

Schedulers and `docker stop` send SIGTERM, which would kill the process where it stands; the entry
layer (cli.run, through handled()) turns it into an exception, as Python does SIGINT, so that
outside the training loop either signal stops the run at once, with files written whole or not at
all (files.py). While the loop runs (deferred()), a signal only records a request: the loop stops
at its next step boundary, after an optimizer update, checkpoints the work there when checkpointing
is on, and raises Stopped. A second SIGINT while waiting stops at once.

Handlers can only be set in the main thread; elsewhere nothing is changed and the loop is never
asked to stop. This module imports no torch: the entry layer loads it before --help answers.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """A run stopped by a signal. A KeyboardInterrupt, so that code which catches Ctrl-C catches it,
    and `except Exception` does not. Inside the loop it knows where the run stopped and the
    checkpoint written there (None: checkpointing is off)."""

    def __init__(self, signum: int, epoch: int | None = None, step: int | None = None, steps: int | None = None,
                 checkpoint: Path | None = None, best_saved: bool = False, announce: bool = True):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.epoch, self.step, self.steps = signum, epoch, step, steps
        self.checkpoint, self.best_saved, self.announce = checkpoint, best_saved, announce
        self.model_dir: Path | None = None  # where the job keeps the best model; set by the job

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # what a shell reports for a process the signal ended: 130, 143

    @property
    def in_loop(self) -> bool:
        return self.epoch is not None

    def describe(self) -> str:
        """One line: the signal, where the run stopped, and what was kept."""
        if not self.in_loop:
            return f"stopped by {self.name}"
        where = f"stopped by {self.name} at epoch {self.epoch}, step {self.step} of {self.steps}"
        if self.checkpoint is not None:
            return f"{where}; checkpoint written to {self.checkpoint}"
        kept = f"the best model so far stays in {self.model_dir}" if self.best_saved and self.model_dir \
            else "no model was saved yet"
        return f"{where}; no checkpoint was written (checkpointing is off), {kept}"


class StopRequest:
    """The signal that asked the loop to stop, if any. The loop reads `signum` at its step boundaries."""

    def __init__(self, announce: bool = True):
        self.signum: int | None = None
        self.announce = announce

    def handle(self, signum: int, frame) -> None:
        if self.signum is not None:
            if signum == signal.SIGINT:  # asked twice: the user does not want to wait
                raise KeyboardInterrupt
            return  # a scheduler repeating its SIGTERM: the stop is under way
        self.signum = signum
        if self.announce:
            again = " (Ctrl-C again to stop at once)" if signum == signal.SIGINT else ""
            # os.write, not print: a handler that prints while the progress bar is printing to the same
            # stream fails with a reentrant-call error.
            os.write(2, f"\n{signal.Signals(signum).name}: stopping after this step{again}\n".encode())


def _stop_at_once(signum: int, frame) -> None:
    raise Stopped(signum)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def _handlers(handlers: dict[int, object]) -> Iterator[None]:
    """Set these signal handlers for the block and restore the previous ones after it."""
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def handled() -> Iterator[None]:
    """For an entry script: SIGTERM raises Stopped, as SIGINT raises KeyboardInterrupt."""
    if not _in_main_thread():
        yield
        return
    with _handlers({signal.SIGTERM: _stop_at_once}):
        yield


@contextmanager
def deferred(announce: bool = True) -> Iterator[StopRequest]:
    """While the training loop runs: a signal that would stop the run at once (SIGINT's default
    KeyboardInterrupt, SIGTERM once handled() is on) only asks the loop to stop at its next step
    boundary. Other handlers, a Python API user's own or SIGTERM's default, are left as they are."""
    request = StopRequest(announce)
    if not _in_main_thread():
        yield request
        return
    taken = [signum for signum in SIGNALS
             if signal.getsignal(signum) in (signal.default_int_handler, _stop_at_once)]
    with _handlers({signum: request.handle for signum in taken}):
        yield request
    if request.signum is not None:  # it came after the loop's last look: stop at once, as outside the loop
        raise Stopped(request.signum, announce=announce)
