"""The package's output: one answer to "am I the main process", and --quiet that keeps results."""

from __future__ import annotations

import logging

import pytest

from kd_bert import log


@pytest.mark.parametrize("variable", ["RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK"])
def test_only_the_first_process_of_any_launcher_prints(variable, monkeypatch, capsys):
    logger = logging.getLogger("kd_bert.test")
    for rank, printed in (("1", ""), ("0", "hello\n")):
        monkeypatch.setenv(variable, rank)
        assert log.is_main_process() is (rank == "0")
        logger.info("hello")
        assert capsys.readouterr().out == printed


def test_quiet_keeps_results_and_warnings(capsys):
    logger = logging.getLogger("kd_bert.test")
    before = log.verbosity()
    try:
        log.set_verbosity("warning")
        logger.info("progress")
        logger.warning("careful")
        log.show(logger, "accuracy 0.9")
        assert capsys.readouterr().out == "warning: careful\naccuracy 0.9\n"
    finally:
        log.set_verbosity(before)
