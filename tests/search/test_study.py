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


@pytest.mark.slow  # processes racing to make one database, about 11 s; CI runs it with -m slow
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


def test_processes_started_together_draw_from_different_seeds():
    """Two sweep processes on one shared study start together: their pids are neighbours, and the one that
    opens the study second sees a trial more. Their samplers still get different seeds (a sum of the three
    gave both the same one, and each then drew the other's settings); a study of one process, continued,
    gets the same seed for the same number of trials."""
    from kd_bert.search.study import sampler_seed

    for pid in (1000, 4_194_303):
        assert sampler_seed(42, 0, pid) != sampler_seed(42, 1, pid - 1)
        assert sampler_seed(42, 1, pid) != sampler_seed(42, 0, pid - 1)
    assert sampler_seed(42, 3, None) == sampler_seed(42, 3, None) != sampler_seed(42, 4, None)
    assert len({sampler_seed(42, trials, None) for trials in range(100)}) == 100


def test_a_study_recorded_before_the_student_was_digested_continues_and_then_checks_it(tmp_path):
    """A study made before its record had the student's digest is not 'made with other inputs': it takes this
    process's digest, and from then on a changed student start is refused."""
    from kd_bert.errors import UserError
    from kd_bert.search.study import check_dependencies

    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = open_study(url, "old", "maximize", SETTINGS, trials=4, seed=42, median_pruning=False, shared=False)
    study.set_user_attr("depends_on", {"data": "d1", "teacher": "t1"})  # as an older version recorded it
    check_dependencies(study, "old", url, {"data": "d1", "teacher": "t1", "student": "s1"})
    assert study.user_attrs["depends_on"] == {"data": "d1", "teacher": "t1", "student": "s1"}
    with pytest.raises(UserError, match=r"the weights the student starts from \(--student_model\) changed"):
        check_dependencies(study, "old", url, {"data": "d1", "teacher": "t1", "student": "s2"})
    with pytest.raises(UserError, match=r"the teacher's weights \(--teacher_model\) changed"):
        check_dependencies(study, "old", url, {"data": "d1", "teacher": "t2", "student": "s1"})
