"""The evaluation protocol: the fixed clustering features, the fallback, and the earlier per-run choice."""

import numpy as np
import pytest

from cae_lib.evaluate import EvalConfig, evaluate_embeddings, fixed_features, format_metrics


def two_spaces(seed: int = 0) -> tuple[dict, dict, dict]:
    """Labels y; a "projection" whose two clusters are the labels; a "latent" whose two clusters are a nuisance."""
    rng = np.random.default_rng(seed)
    feats, labels = {"latent": {}, "projection": {}}, {}
    for split, n in (("train", 300), ("val", 120), ("test", 120)):
        y = rng.integers(0, 2, n)
        nuisance = rng.integers(0, 2, n)
        labels[split] = y
        feats["projection"][split] = (y[:, None] * 6.0 + rng.normal(size=(n, 4))).astype(np.float32)
        feats["latent"][split] = (nuisance[:, None] * 6.0 + rng.normal(size=(n, 4))).astype(np.float32)
    return feats, labels, feats["latent"]


def test_fixed_features_are_used_whatever_the_validation_split_says():
    feats, y, z = two_spaces()
    on_projection = evaluate_embeddings(z, y, feats, EvalConfig(cluster_features="projection/none", probe_C=(1.0,)))
    assert on_projection["cluster_features"] == "projection/none" and on_projection["hungarian_acc"] == 1.0
    on_latent = evaluate_embeddings(z, y, feats, EvalConfig(cluster_features="latent/none", probe_C=(1.0,)))
    assert on_latent["cluster_features"] == "latent/none" and on_latent["hungarian_acc"] < 0.65  # the nuisance split
    assert set(on_latent["val_hungarian_by_features"]) == {f"{s}/{p}" for s in feats for p in ("none", "l2", "standardize")}


def test_per_run_validation_choice_is_still_available():
    feats, y, z = two_spaces()
    chosen = evaluate_embeddings(z, y, feats, EvalConfig(cluster_features=None, probe_C=(1.0,)))
    assert chosen["cluster_features"].startswith("projection/") and chosen["hungarian_acc"] == 1.0


def test_features_without_the_fixed_space_keep_the_validation_choice():
    feats, y, _ = two_spaces()
    scale = np.array([30.0, 1.0, 1.0, 1.0], dtype=np.float32)  # a nuisance axis that only standardising tames
    rng = np.random.default_rng(1)
    pixels = {"pixels": {s: f + rng.normal(size=f.shape).astype(np.float32) * scale for s, f in feats["projection"].items()}}
    out = evaluate_embeddings(pixels["pixels"], y, pixels, EvalConfig(probe_C=(1.0,)))  # default: projection/none
    assert out["cluster_features"] == "pixels/standardize" and out["hungarian_acc"] > 0.95
    assert fixed_features("projection/l2", {"latent": {}}) is None
    assert fixed_features("latent/l2", {"latent": {}}) == ("latent", "l2")
    with pytest.raises(ValueError, match="cluster_features must be"):
        fixed_features("projection/whiten", {"latent": {}})


def test_the_metrics_table_names_the_dataset_only_when_it_knows_it():
    feats, y, z = two_spaces()
    result = evaluate_embeddings(z, y, feats, EvalConfig(probe_C=(1.0,)))
    assert format_metrics(result).splitlines()[0] == f"| metric (test split, n = {len(y['test'])}) | value |"
    assert format_metrics({**result, "dataset": "digits"}).splitlines()[0].startswith("| metric (digits, test split, n = ")
