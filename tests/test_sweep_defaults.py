"""The selection rule of benchmarks/sweep_defaults.py and its post-hoc test table, on rows made by hand."""

import numpy as np
import pytest

from scripts import ROOT, load_script


@pytest.fixture(scope="module")
def sweep():
    return load_script("benchmarks/sweep_defaults.py")


def row(candidate, dataset, seed, hungarian, knn, seconds=30.0, latent=0.6, test=None):
    r = {"candidate": candidate, "dataset": dataset, "seed": seed, "train_seconds": seconds,
         "val_hungarian_by_features": {"latent/none": latent, "projection/none": hungarian},
         "val_knn_acc": knn, "val_linear_unweighted_acc": 0.8}
    if test is not None:
        r.update(test_hungarian_acc=test[0], test_knn_acc=test[1], test_linear_unweighted_acc=0.8, test_majority_floor=0.625)
    return r


def test_every_candidate_belongs_to_exactly_one_stage(sweep):
    assert sum(len(s) for s in sweep.STAGES) == len(sweep.CANDIDATES)
    assert [sweep.stage(n) for n in sweep.STAGES[0]] == [1] * len(sweep.STAGES[0])
    assert {sweep.stage(n) for n in sweep.STAGES[-1]} == {len(sweep.STAGES)}


def test_rule_takes_the_best_mean_score_within_the_budget_and_the_best_worst_feature(sweep):
    a, b, c = list(sweep.CANDIDATES)[:3]
    rows = [
        # a: score (0.80 + 0.90) / 2 = 0.85 on both seeds, in budget
        row(a, "pneumoniamnist", 0, 0.80, 0.90), row(a, "pneumoniamnist", 1, 0.80, 0.90),
        # b: score 0.90, but 50 s on PneumoniaMNIST: over the 45 s budget, so not eligible
        row(b, "pneumoniamnist", 0, 0.90, 0.90, seconds=50), row(b, "pneumoniamnist", 1, 0.90, 0.90, seconds=50),
        # c: score (0.70 + 0.90) / 2 = 0.80, and latent/none has the higher mean but a worse worst run
        row(c, "pneumoniamnist", 0, 0.70, 0.90, latent=0.99), row(c, "pneumoniamnist", 1, 0.70, 0.90, latent=0.10),
    ]
    md = sweep.summarise(rows)
    assert "Fixed choice: **projection/none**" in md  # worst run 0.70 against latent/none's 0.10
    assert f"Chosen by the rule: **{a}**." in md
    assert "0.9000 (over budget)" in md and "| 0.8500 |" in md and "| 0.8000 |" in md


def test_posthoc_table_counts_reproduced_rows_and_ranks_val_against_test(sweep):
    names = list(sweep.CANDIDATES)[:3]
    val = [row(n, "pneumoniamnist", 0, h, 0.9) for n, h in zip(names, (0.7, 0.8, 0.9))]
    # test scores in the reverse order of the validation scores: Spearman -1
    test = [row(n, "pneumoniamnist", 0, h, 0.9, test=(t, 0.8)) for n, h, t in zip(names, (0.7, 0.8, 0.9), (0.9, 0.8, 0.7))]
    test[0]["val_knn_acc"] = 0.91  # one retrained run that did not reproduce its sweep row
    md = sweep.summarise_test(val, test)
    assert "2 of 3 retrained runs reproduced" in md
    assert "Spearman correlation of the validation and test scores over 3 candidates: -1.00." in md
    assert "| 0.900 ± 0.000 (0.900) | 0.800 ± 0.000 | 0.800 | 0.8050 | 0.8500 |" in md  # val (0.7 + 0.91) / 2, test (0.9 + 0.8) / 2
    assert "pneumoniamnist 0.625" in md


def test_zoomed_keeps_the_layout_and_zooms_about_the_centre(sweep):
    grey = np.zeros((2, 28, 28), np.uint8)
    grey[:, 10:18, 10:18] = 200  # an 8-px square in the middle
    assert np.array_equal(sweep.zoomed(grey, 1.0), grey)
    closer = sweep.zoomed(grey, 0.5)  # a window half the size: the square doubles to 16 px
    assert closer.dtype == np.uint8 and closer.shape == grey.shape
    assert closer.astype(float).sum() == pytest.approx(4 * grey.astype(float).sum(), rel=0.05) and closer[:, 14, 14].tolist() == [200, 200]
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    assert np.array_equal(sweep.zoomed(rgb, 0.5), np.repeat(closer[..., None], 3, axis=-1))


def test_framing_table_correlates_each_validation_proxy_with_test_knn(sweep):
    names = list(sweep.CANDIDATES)[:3]
    rows = []
    for i, n in enumerate(names):
        r = row(n, "pneumoniamnist", 0, 0.8, 0.90 + 0.01 * i, test=(0.8, 0.85 - 0.01 * i))  # val kNN up, test kNN down
        r.update(val_knn_zoomed_in=0.80 - 0.01 * i, test_knn_projection=0.8, test_knn_tta=0.8)  # zoomed-in val tracks test
        rows.append(r)
    md = sweep.summarise_test(rows, rows)
    assert "val kNN -1.00, val kNN zoomed in 1.00." in md
    assert "| 1 | " + names[0] + " | 0.900 | 0.800 | 0.850 | 0.800 | 0.800 |" in md


def test_every_committed_sweep_row_is_what_its_candidate_builds_today(sweep):
    """Re-running the sweep trains what it trained then: the candidates do not follow the moving defaults."""
    import json

    from cae_lib.config import CAEConfig

    committed = ROOT / "benchmarks" / "results" / "sweep_defaults.jsonl"
    rows = [json.loads(line) for line in committed.read_text().splitlines()]
    assert {r["candidate"] for r in rows} == set(sweep.CANDIDATES)
    for r in rows:
        then = CAEConfig.from_dict(r["config"])  # keys added since then take their old meaning (no ramp, no zoom-out)
        now = sweep.apply_overrides(CAEConfig(dataset=then.dataset), sweep.CANDIDATES[r["candidate"]])
        now.model, now.train.seed, now.train.precision = then.model, then.train.seed, then.train.precision  # set per run
        assert now.to_dict() == then.to_dict(), r["candidate"]


def test_cluster_methods_are_the_algorithms_they_are_named(sweep):
    """A broad cluster beside a small tight one: k-means puts the boundary halfway between the centres
    and gives the small cluster part of the broad one; a Gaussian mixture models the two spreads."""
    rng = np.random.default_rng(0)

    def blobs(n):
        y = (rng.random(n) < 0.15).astype(int)  # 15 % in the small, tight cluster
        return np.where(y[:, None] == 1, rng.normal(0, 0.2, (n, 2)) + [4.0, 0.0], rng.normal(0, 1.5, (n, 2))), y

    (x_train, _), (x_val, y_val) = blobs(600), blobs(300)
    scores = sweep.cluster_method_scores({"projection_train": x_train, "projection_val": x_val, "y_val": y_val}, k=2, seed=0)
    assert set(scores) == {"kmeans", "gmm (full covariance)", "gmm (diag covariance)", "agglomerative"}
    assert scores["kmeans"] < 0.9
    assert scores["gmm (full covariance)"] > 0.98 and scores["gmm (diag covariance)"] > 0.98


def test_cluster_method_table_reads_a_sweep_folder(sweep, tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "embeddings").mkdir()
    for seed in (0, 1):
        y = np.repeat([0, 1], 50)
        codes = {f"projection_{s}": rng.normal(0, 0.2, (100, 4)) + 5 * y[:, None] for s in ("train", "val")}
        np.savez(tmp_path / "embeddings" / f"pneumoniamnist-3-{seed}.npz", **codes, y_train=y, y_val=y)
    md = sweep.compare_cluster_methods(tmp_path)
    assert "2 runs" in md and "| kmeans | 1.000 (1.000) | 1.000 (1.000) |" in md
    with pytest.raises(SystemExit, match="no saved codes"):
        sweep.compare_cluster_methods(tmp_path / "empty")


def test_rank_correlation_treats_equal_means_as_ties(sweep):
    tied = [0.1 + 0.2, 0.3, 0.5]  # 0.30000000000000004 and 0.3: the same accuracy, summed in another order
    assert sweep.rank_correlation(tied, [1.0, 1.0, 2.0]) == pytest.approx(1.0)
    assert sweep.rank_correlation([0.1, 0.2, 0.3], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)


def test_rule_skips_a_candidate_that_reconstructs_worse_than_the_tolerance_allows(sweep):
    ref = sweep.RECON_REFERENCE
    better, worse = [n for n in sweep.CANDIDATES if sweep.stage(n) == 7][:2]
    rows = []
    for seed in (0, 1):
        rows += [row(ref, "pneumoniamnist", seed, 0.80, 0.90), row(better, "pneumoniamnist", seed, 0.86, 0.90),
                 row(worse, "pneumoniamnist", seed, 0.90, 0.90)]
        rows[-3]["val_recon_mse"], rows[-2]["val_recon_mse"] = 0.010, 0.0149  # 1.49 x the reference: eligible
        rows[-1]["val_recon_mse"] = 0.0151 if seed == 0 else 0.0153  # mean 1.52 x: not eligible, however well it scores
    md = sweep.summarise(rows)
    assert f"Chosen by the rule: **{better}**." in md
    assert f"0.9000 (recon MSE over {sweep.RECON_TOLERANCE:g}x the reference)" in md
    assert "| 0.0149 |" in md and "| 0.0100 |" in md
    # Rows from before stage 7 have no recon MSE: the table shows a dash and the condition does not apply.
    assert sweep.reconstructs_well(worse, ["pneumoniamnist"], sweep.recon_errors([r for r in rows if r["candidate"] != ref]))


def test_reconstruction_mse_is_the_mean_squared_error_of_what_the_decoder_returns(sweep, monkeypatch):
    import torch

    from cae_lib.config import ModelConfig
    from cae_lib.models import ContrastiveAutoencoder

    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    model = ContrastiveAutoencoder(ModelConfig())
    monkeypatch.setattr(model, "decode", lambda z: torch.full((len(z), 1, 28, 28), 0.5))  # a decoder that returns grey
    expected = float(np.mean((images / 255.0 - 0.5) ** 2))
    assert sweep.reconstruction_mse(model, images, batch_size=3) == pytest.approx(expected, rel=1e-6)  # batches of 3, 3, 1
