"""The sweep's study database: processes started together on a new one all open the same study."""

from __future__ import annotations

import multiprocessing
import time

import pytest

pytest.importorskip("optuna")

from kd_bert.search.study import open_study  # noqa: E402

SETTINGS = {"space": ["alpha=0.1:1"], "flags": {"seed": 42}}


def _open_at(url: str, start: float, queue) -> None:
    while time.time() < start:  # every process reaches the new database in the same instant
        pass
    try:
        study = open_study(url, "race", "maximize", SETTINGS, trials=4, seed=42, median_pruning=False, shared=True)
        queue.put(("ok", study._study_id, study.user_attrs["settings"] == SETTINGS))
    except BaseException as exc:  # noqa: BLE001 - reported to the test, which shows it
        queue.put(("error", repr(exc), False))


def test_processes_opening_a_new_study_at_once_all_open_it(tmp_path):
    # Optuna makes a new database's tables unguarded, and processes that race to make them fail with
    # "table ... already exists" or a duplicate schema version unless opening retries.
    ctx = multiprocessing.get_context("spawn")
    for attempt in range(2):
        url = f"sqlite:///{tmp_path / f'study-{attempt}.db'}"
        queue, start = ctx.Queue(), time.time() + 4  # time for the processes to import torch and Optuna
        procs = [ctx.Process(target=_open_at, args=(url, start, queue)) for _ in range(4)]
        for proc in procs:
            proc.start()
        results = [queue.get(timeout=120) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        assert all(r[0] == "ok" for r in results), results
        assert len({r[1] for r in results}) == 1  # one study, not one each
        assert all(r[2] for r in results)
