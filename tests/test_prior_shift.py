"""The class-prior arithmetic of benchmarks/prior_shift.py, against answers worked by hand."""

import numpy as np
import pytest

from scripts import load_script


@pytest.fixture(scope="module")
def prior_shift():
    return load_script("benchmarks/prior_shift.py")


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


def test_framing_scale_recovers_known_zooms_of_the_template(prior_shift):
    import torch

    centre_zoom = prior_shift.centre_zoom

    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 28), torch.linspace(-1, 1, 28), indexing="ij")
    # an off-round "body": a wide ellipse, brighter to the left, so zooms are not confused with shifts of contrast
    template = (torch.exp(-((xx / 0.6) ** 2 + (yy / 0.8) ** 2) * 2) * (1.2 - 0.3 * xx)).clamp(0, 1)[None, None]
    truth = np.array([0.8, 0.9, 1.0, 1.1, 1.25])
    images = torch.cat([centre_zoom(template, float(w)) for w in truth])[:, 0]
    as_uint8 = (images * 255).round().to(torch.uint8).numpy()
    assert prior_shift.framing_scale(as_uint8, template) == pytest.approx(truth)
    rgb = np.repeat(as_uint8[..., None], 3, axis=-1)  # RGB is averaged to grey
    assert prior_shift.framing_scale(rgb, template) == pytest.approx(truth)


def test_framing_row_counts_and_recalls_per_bin(prior_shift):
    y_true = np.array([0, 0, 0, 0, 1, 1])
    y_pred = np.array([1, 0, 0, 0, 1, 1])
    scale = np.array([0.8, 0.9, 1.0, 1.2, 0.8, 1.0])  # class 0: two close (one right), one typical, one wide
    row = prior_shift.framing_row(y_true, y_pred, scale, np.array([0, 1]))
    assert row["0"]["close_share"] == 0.5 and row["1"]["close_share"] == 0.5
    assert row["0"]["bins"]["close"] == {"n": 2, "recall": 0.5}
    assert row["0"]["bins"]["typical"] == {"n": 1, "recall": 1.0} and row["0"]["bins"]["wide"] == {"n": 1, "recall": 1.0}
    assert row["1"]["bins"]["wide"] == {"n": 0, "recall": None}


def test_framing_gap_gives_close_framed_images_the_recall_of_the_others(prior_shift):
    # class 0: 2 close (recall 0.5), 2 others (recall 1.0); class 1: 2 close (recall 1.0), 4 others (recall 0.75)
    framing = {
        "0": {"bins": {"close": {"n": 2, "recall": 0.5}, "typical": {"n": 1, "recall": 1.0}, "wide": {"n": 1, "recall": 1.0}}},
        "1": {"bins": {"close": {"n": 2, "recall": 1.0}, "typical": {"n": 4, "recall": 0.75}, "wide": {"n": 0, "recall": None}}},
    }
    # 2 x (1.0 - 0.5) + 2 x (0.75 - 1.0) = 0.5 more right answers out of 10 images
    assert prior_shift.framing_gap(framing) == pytest.approx(0.05)
