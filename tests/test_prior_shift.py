"""The class-prior arithmetic of benchmarks/prior_shift.py, against answers worked by hand."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "prior_shift.py"


@pytest.fixture(scope="module")
def prior_shift():
    spec = importlib.util.spec_from_file_location("prior_shift", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_accuracy_is_the_share_weighted_recall_and_reweights_to_other_shares(prior_shift):
    # 4 normals (2 right) and 6 pneumonias (5 right): recalls 1/2 and 5/6, accuracy 7/10.
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    y_pred = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 0])
    row = prior_shift.split_row(y_true, y_pred, np.array([0, 1]), train_shares=np.array([0.25, 0.75]))
    assert row["recalls"] == pytest.approx([0.5, 5 / 6])
    assert row["shares"] == pytest.approx([0.4, 0.6])
    assert row["accuracy"] == pytest.approx(0.7) == pytest.approx(np.dot(row["shares"], row["recalls"]))
    assert row["accuracy_at_train_shares"] == pytest.approx(0.25 * 0.5 + 0.75 * 5 / 6)  # 0.75


def test_same_recalls_at_the_training_shares_give_the_same_accuracy(prior_shift):
    y_true = np.array([0, 1, 1, 1])
    y_pred = np.array([0, 1, 1, 0])
    row = prior_shift.split_row(y_true, y_pred, np.array([0, 1]), train_shares=np.array([0.25, 0.75]))
    assert row["accuracy_at_train_shares"] == pytest.approx(row["accuracy"]) == pytest.approx(0.75)
