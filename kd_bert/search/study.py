"""The sweep's Optuna study: where it lives (SQLite in the output folder, or --storage), which trials
count, and how a trial that never finished is rerun.

A study is a list of trials in a database, so that any number of processes, on one machine or many,
can work on it: each asks for the next trial, and the database hands every trial number out once.
A process that was killed leaves its trial RUNNING; the next process that opens the study fails it
and queues its settings again: at once when the dead process ran on this machine (its pid is gone),
after HEARTBEAT_GRACE seconds without a heartbeat when it ran on another.

A study also records what its trials share (the flags and the space) and what they depend on (the
digests of the data and the teacher): a process whose own differ is refused, since its trials would
not compare with the study's. Each process seeds its sampler with the number of trials the study
holds, so that a continued study draws new settings rather than replaying its first ones.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import socket
import time
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

from ..errors import UserError
from ..safety.lock import holder_alive

log = logging.getLogger(__name__)

STUDY_FILE = "study.db"
HEARTBEAT_INTERVAL, HEARTBEAT_GRACE = 30, 120  # seconds
# Why a trial failed, in its user attributes: interrupted ones are rerun and do not count; a trial
# whose run failed (its loss became nan) counts as tried; a surplus one was asked for by two
# processes at once for the last place and ran in neither; a repeat drew the settings of a trial
# already tried and never ran.
INTERRUPTED, ERROR, SURPLUS, REPEAT = "interrupted", "error", "surplus", "repeat"
# URLs of an SQLite database that lives in the process's memory and ends with it.
IN_MEMORY = ("sqlite://", "sqlite:///:memory:")


def optuna_module():
    """Optuna, or the line that says how to install it."""
    try:
        import optuna
    except ImportError:
        raise UserError("sweep.py needs Optuna, which the rest of the toolkit does not: pip install optuna "
                        "(or pip install 'kd-bert[sweep]')") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep prints its own line per trial
    return optuna


def storage_url(storage: str | None, folder: Path) -> str:
    return storage or f"sqlite:///{(folder / STUDY_FILE).resolve()}"


def check_storage(storage: str | None) -> None:
    """A --storage the sweep can keep its study in: not an in-memory database, which ends with the process."""
    if storage is not None and storage.split("?")[0].strip() in IN_MEMORY:
        raise UserError(f"--storage {storage} is an in-memory database: the study would end with this process, so it "
                        f"could be neither continued nor shared; give a file (--storage sqlite:///sweep.db), or leave "
                        f"--storage out to keep the study in <output_dir>/sweep/{STUDY_FILE}")


def open_storage(url: str, attempts: int = 6):
    """The RDBStorage at `url`. Processes started together on a new database race to make its tables
    (Optuna makes them unguarded): the losers fail with "table ... already exists" or a duplicate schema
    version, and on a retry find the tables made. So a database error is retried, after a random wait;
    a URL no driver can open fails at once."""
    optuna = optuna_module()
    from sqlalchemy.exc import DBAPIError

    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}  # writers wait their turn
    for attempt in range(1, attempts + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # heartbeats are experimental in Optuna: it warns on every use
                return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_INTERVAL,
                                                  grace_period=HEARTBEAT_GRACE, failed_trial_callback=requeue)
        except DBAPIError as exc:  # that race, or a database that does not answer: wait, then try again
            error = exc
            if attempt < attempts:
                time.sleep(random.uniform(0.2, 1.0) * attempt)
        except Exception as exc:  # a URL the database drivers cannot open
            error = exc
            break
    raise UserError(f"{url}: cannot open the study's database ({str(error).splitlines()[0]}); give a URL "
                    f"such as sqlite:///sweep.db or postgresql://user@host/db") from None


def open_study(url: str, name: str, direction: str | list[str], settings: dict, trials: int, seed: int, median_pruning: bool,
               shared: bool, depends_on: dict | None = None):
    """The study `name` in `url`, made or reopened. It records the settings every trial shares and the
    space (`settings`), and the digests of what the trials read (`depends_on`: the data, the teacher); a
    study made with other ones is refused, since its trials would not compare. `direction`: one, or a
    list of one per objective (a multi-objective study).
    The sampler's seed is drawn from `seed` and the number of trials the study holds, so a continued
    study draws settings its first run did not; shared (--storage given): other processes may work on it
    at once, so the seed is also drawn from this process's own pid (see sampler_seed)."""
    optuna = optuna_module()
    storage = open_storage(url)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=4) if median_pruning else optuna.pruners.NopPruner()
    goals = {"directions": list(direction)} if isinstance(direction, (list, tuple)) else {"direction": direction}
    try:
        study = optuna.create_study(storage=storage, pruner=pruner, study_name=name, load_if_exists=True, **goals)
    except ValueError as exc:  # a study of this name made with the other number of objectives
        raise UserError(f"the study {name} in {url} cannot be continued with these objectives ({exc}); run the "
                        f"command that made it, or pass another --output_dir (or --study_name)") from None
    recorded = study.user_attrs.get("settings")
    if recorded is None:
        study.set_user_attr("settings", settings)
    elif recorded != settings:
        raise UserError(f"the study {name} in {url} was made with other settings: {changes(recorded, settings)}; run "
                        f"the command that made it to continue it, or pass another --output_dir (or --study_name) to "
                        f"start a new study")
    check_dependencies(study, name, url, depends_on or {})
    startup = min(10, max(4, trials // 4))  # random trials first, then TPE models the good and the bad
    study.sampler = optuna.samplers.TPESampler(seed=sampler_seed(seed, len(study.get_trials(deepcopy=False)),
                                                                 os.getpid() if shared else None),
                                               n_startup_trials=startup)
    return study


def sampler_seed(seed: int, trials: int, pid: int | None) -> int:
    """A seed of its own for each (seed, trials the study holds, process) triple. A sum would not do: two
    processes started together have neighbouring pids, and the one that opens the study second sees one
    trial more, so seed + trials + pid was the same for both, and each drew the other's settings."""
    text = f"{seed}/{trials}" + ("" if pid is None else f"/{pid}")
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def changes(recorded: dict, settings: dict) -> str:
    """The flags (and the space) that differ between a study's settings and this command's, old -> new."""
    shown = []
    if recorded.get("objectives") != settings.get("objectives"):
        shown.append(f"--objectives {','.join(recorded.get('objectives') or ['accuracy'])} -> "
                     f"{','.join(settings.get('objectives') or ['accuracy'])}")
    if recorded.get("space") != settings.get("space"):
        shown.append(f"--search {_value(recorded.get('space'))} -> {_value(settings.get('space'))}")
    old, new = recorded.get("flags") or {}, settings.get("flags") or {}
    for flag in sorted(set(old) | set(new)):
        if old.get(flag) != new.get(flag):
            shown.append(f"--{flag} {_value(old.get(flag))} -> {_value(new.get(flag))}")
    return ", ".join(shown)


def _value(value) -> str:
    """A value as its flag is written: a list as its items, None as unset."""
    if value is None:
        return "(unset)"
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value)) or "(none)"
    return str(value)


# What each digest of depends_on is of, as the refusal names it.
DEPENDENCIES = {"data": "the training data (--data_path)", "transfer_data": "the transfer data (--transfer_data)",
                "teacher": "the teacher's weights (--teacher_model)",
                "student": "the weights the student starts from (--student_model)"}
# Digests recorded only since a later version: a study whose record lacks one was made before, not with other
# inputs, and takes this process's digest as its own.
RECORDED_SINCE = {"student"}


def check_dependencies(study, name: str, url: str, depends_on: dict) -> None:
    """The digests of what the trials read, recorded by the study's first process and compared by every
    later one: data changed in place, or a teacher retrained in its folder, makes trials that would not
    compare with the study's."""
    recorded = study.user_attrs.get("depends_on")
    if recorded is None:
        study.set_user_attr("depends_on", depends_on)
        return
    older = {key: depends_on[key] for key in RECORDED_SINCE if key in depends_on and key not in recorded}
    if older:
        recorded = {**recorded, **older}
        study.set_user_attr("depends_on", recorded)
    changed = [DEPENDENCIES.get(key, key) for key in sorted(set(recorded) | set(depends_on))
               if recorded.get(key) != depends_on.get(key)]
    if changed:
        raise UserError(f"the study {name} in {url} was made with other inputs: {' and '.join(changed)} changed since "
                        f"its trials ran, so new trials would not compare with them; to start a new study on them, "
                        f"pass another --output_dir (or --study_name)")


def owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def requeue(study, trial) -> None:
    """Queue a trial that never finished again, with its settings (Optuna calls it for a stale one)."""
    study.enqueue_trial(trial.params, user_attrs={"rerun_of": trial.number})


def recover(study) -> list[int]:
    """Fail and queue again the trials left RUNNING by processes that are gone: this machine's at once,
    other machines' once their heartbeat is stale. Returns their numbers."""
    from optuna.trial import TrialState

    me = owner()
    lost = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = trial.user_attrs.get("owner") or {}
        if who and who.get("pid") != me["pid"] and not holder_alive(who):  # only a pid on this host is checked
            study._storage.set_trial_user_attr(trial._trial_id, "failure", INTERRUPTED)
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            requeue(study, trial)
            lost.append(trial.number)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import optuna

        stale = optuna.storages.fail_stale_trials  # other machines': requeue() is its callback
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        stale(study)
        after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    return sorted(lost + list(before - after))


def counted(study) -> tuple[int, list[int]]:
    """The trials that count toward --trials (finished, pruned, or failed in their run), and the numbers
    of those running now."""
    from optuna.trial import TrialState

    done, running = 0, []
    for trial in study.get_trials(deepcopy=False):
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            done += 1
        elif trial.state == TrialState.FAIL and trial.user_attrs.get("failure") == ERROR:
            done += 1
        elif trial.state == TrialState.RUNNING:
            running.append(trial.number)
    return done, sorted(running)


def tried(study, number: int) -> list[dict]:
    """The settings of the study's trials other than `number` that count or run now: a new trial must not
    repeat any of them."""
    from optuna.trial import TrialState

    _, running = counted(study)
    return [t.params for t in study.get_trials(deepcopy=False)
            if t.number != number and (t.number in running or t.state in (TrialState.COMPLETE, TrialState.PRUNED)
                                       or (t.state == TrialState.FAIL and t.user_attrs.get("failure") == ERROR))]


@contextmanager
def heartbeat(study, trial):
    """The trial's heartbeat while it runs, so that other machines can tell it is alive."""
    try:
        from optuna.storages._heartbeat import get_heartbeat_thread
    except ImportError:  # another Optuna layout: only this machine's pid check finds a lost trial
        context = nullcontext()
    else:
        context = get_heartbeat_thread(trial._trial_id, study._storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with context:
            yield
