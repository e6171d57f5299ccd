"""The numpy metrics against scikit-learn's and scipy's, and the comparison metrics against hand
computations."""

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import (
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
)

from kd_bert.scoring.metrics import (
    agreement,
    average_ranks,
    classification_metrics,
    expected_calibration_error,
    mean_kl,
    pearson,
    regression_metrics,
    softmax,
    spearman,
)


@pytest.mark.parametrize("num_labels,seed", [(2, 0), (2, 1), (3, 2), (7, 3), (77, 4)])
def test_classification_metrics_match_scikit_learn(num_labels, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_labels, 500)
    # Mostly right, some classes never predicted: the zero-division cases are exercised too.
    predictions = np.where(rng.random(500) < 0.6, labels, rng.integers(0, max(num_labels // 2, 1), 500))
    names = [f"c{i}" for i in range(num_labels)]
    ours = classification_metrics(labels, predictions, names)
    ids = list(range(num_labels))
    average = "binary" if num_labels == 2 else "macro"
    p, r, f, _ = precision_recall_fscore_support(labels, predictions, labels=ids, average=average, zero_division=0)
    assert ours["accuracy"] == pytest.approx(np.mean(labels == predictions))
    assert (ours["precision"], ours["recall"], ours["f1"]) == pytest.approx((p, r, f))
    assert ours["confusion_matrix"] == confusion_matrix(labels, predictions, labels=ids).tolist()
    report = classification_report(labels, predictions, labels=ids, target_names=names, output_dict=True,
                                   zero_division=0)
    for name in names:
        for key in ("precision", "recall", "f1-score", "support"):
            assert ours["per_class"][name][key] == pytest.approx(report[name][key]), (name, key)


def test_expected_calibration_error_by_hand():
    # Two bins used out of 10: confidences 0.95 (2 examples, 1 right) and 0.65 (2 examples, both right).
    probs = np.array([[0.95, 0.05], [0.05, 0.95], [0.65, 0.35], [0.35, 0.65]])
    labels = [0, 0, 0, 1]
    expected = 0.5 * abs(0.5 - 0.95) + 0.5 * abs(1.0 - 0.65)
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(expected)
    # Perfectly confident and always right: no gap.
    assert expected_calibration_error(np.eye(3), [0, 1, 2]) == 0.0


def test_agreement_and_kl_by_hand():
    teacher = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 3.0]])
    student = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    assert agreement(teacher, student) == pytest.approx(2 / 3)
    pt, ps = softmax(teacher), softmax(student)
    by_hand = np.mean([sum(pt[i, k] * math.log(pt[i, k] / ps[i, k]) for k in range(2)) for i in range(3)])
    assert mean_kl(teacher, student) == pytest.approx(by_hand)
    assert mean_kl(teacher, teacher) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlations_match_scipy(seed):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 6, 200) + rng.choice([0.0, 0.5], 200)  # many ties, as STS-B's scores have
    predicted = gold + rng.normal(0, 1.5, 200)
    predicted[:20] = predicted[0]  # tied predictions too
    assert np.allclose(average_ranks(predicted), stats.rankdata(predicted))
    assert pearson(predicted, gold) == pytest.approx(stats.pearsonr(predicted, gold).statistic, abs=1e-12)
    assert spearman(predicted, gold) == pytest.approx(stats.spearmanr(predicted, gold).statistic, abs=1e-12)
    metrics = regression_metrics(gold, predicted)
    assert metrics["mse"] == pytest.approx(float(np.mean((predicted - gold) ** 2)))
    assert metrics["num_examples"] == 200
    assert pearson(np.ones(5), gold[:5]) == 0.0  # constant predictions: undefined, and never the best
    assert not math.isnan(spearman(np.ones(5), gold[:5]))
