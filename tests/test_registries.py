"""Every entry of every registry resolves: the loss terms' functions, the student kinds' build functions, the
precisions and the data formats' readers. The declarations that the configs read import no torch, so they
name the torch-side functions; a typo there would otherwise surface only in a run that picks the entry."""

from __future__ import annotations

import inspect

import pytest

from kd_bert.distillation import losses
from kd_bert.models import students
from kd_bert.registries.formats import FORMATS
from kd_bert.registries.precisions import MIXED_PRECISION_CHOICES
from kd_bert.registries.student_kinds import STUDENT_KINDS
from kd_bert.registries.terms import GOLD, LOGIT_TERMS, TEACHER, TERMS
from kd_bert.train import precision
from kd_bert.train.precision import Precision, resolve_precision


def _variants(term):
    return term.variants or (None,)


@pytest.mark.parametrize("term", TERMS, ids=lambda term: term.name)
def test_every_intermediate_term_resolves_to_a_function_of_student_teacher_and_mask(term):
    for variant in _variants(term):
        function = losses.named(term.function_name(variant))
        assert len(inspect.signature(function).parameters) == 3, function  # (student, teacher, mask)


@pytest.mark.parametrize("term", LOGIT_TERMS, ids=lambda term: f"{term.name}-{term.task}")
def test_every_logit_term_resolves_to_a_function_of_logits_and_its_target(term):
    assert term.target in (TEACHER, GOLD)
    for variant in _variants(term):
        parameters = list(inspect.signature(losses.named(term.function_name(variant))).parameters)
        assert len(parameters) == 2 or parameters[2:] == ["temperature"], parameters  # (logits, target[, T])


def test_only_the_loss_functions_resolve():
    for name in ("F", "torch", "annotations", "_token_mean_typo", "weighted_sums"):
        with pytest.raises(LookupError, match="no loss function"):
            losses.named(name)


def test_term_names_and_flags_are_unique():
    """One logit term per name and task kind; no intermediate term shares a logit term's name (the weights
    are kept by name); no two terms declare the same flag."""
    logit = [(term.name, task) for term in LOGIT_TERMS for task in ("classification", "regression")
             if term.applies_to(task)]
    assert len(logit) == len(set(logit))
    intermediate = [term.name for term in TERMS]
    assert len(intermediate) == len(set(intermediate)) and not set(intermediate) & {name for name, _ in logit}
    flags = [flag for term in TERMS for flag in (term.weight_flag, term.variant_flag) if flag]
    flags += {flag for term in LOGIT_TERMS for flag in (term.weight_flag, term.variant_flag) if flag}
    assert len(flags) == len(set(flags))


@pytest.mark.parametrize("kind", STUDENT_KINDS, ids=lambda kind: kind.name)
def test_every_student_kind_resolves_to_a_build_function(kind):
    function = students.build_function(kind)
    assert list(inspect.signature(function).parameters) == ["distill", "head", "teacher", "label_names",
                                                             "eager_attention"]


def test_only_the_build_functions_resolve():
    from dataclasses import replace

    for name in ("nn", "kind_of", "no_such_student"):
        with pytest.raises(LookupError, match="no build function"):
            students.build_function(replace(STUDENT_KINDS[0], build=name))


@pytest.mark.parametrize("choice", MIXED_PRECISION_CHOICES)
def test_every_precision_resolves_on_a_gpu_and_all_but_fp16_on_a_cpu(choice, monkeypatch):
    monkeypatch.delenv(precision.AUTO_ENV, raising=False)
    monkeypatch.setattr(precision, "cuda_device", lambda: (True, True, "a GPU"))
    assert resolve_precision(choice).mode in ("no", "fp16", "bf16")
    monkeypatch.setattr(precision, "cuda_device", lambda: (False, False, ""))
    if choice != "fp16":
        assert isinstance(resolve_precision(choice), Precision)


def test_every_format_has_its_reader():
    assert all(inspect.isfunction(fmt.read) for fmt in FORMATS)  # direct references; tests/data reads a file of each
