"""cae_lib.course: the steps the notebooks share (data, config, load-or-train, tables, committed results)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from IPython.display import Image

from cae_lib.config import preset
from cae_lib.course import (
    FAST_SIZES,
    balance_table,
    cae_config,
    committed_results,
    load_course_data,
    load_or_train_cae,
    quick_train,
    runs_dir,
    subgroup_table,
)
from cae_lib.tables import MarkdownTable, markdown_table


@pytest.fixture
def rgb_npz(tiny_rgb_npz) -> Path:
    return tiny_rgb_npz(n=(300, 240, 260), channels=3, n_classes=4, seed=2)


def test_load_course_data_full_and_fast(rgb_npz):
    train, val, test, fit = load_course_data(rgb_npz)
    assert (len(train), len(val), len(test)) == (300, 240, 260) and fit is train
    fast = load_course_data(rgb_npz, seed=1, fast=True)
    assert len(fast.train) == 300, "FAST keeps the whole train split (notebook 1 shows its statistics)"
    assert (len(fast.fit), len(fast.val), len(fast.test)) == (FAST_SIZES["train"], FAST_SIZES["eval"], FAST_SIZES["eval"])
    again = load_course_data(rgb_npz, seed=1, fast=True)
    assert np.array_equal(fast.fit.labels, again.fit.labels) and np.array_equal(fast.test.images, again.test.images), "seeded"


def test_runs_dir_is_relative_to_the_notebooks_folder(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert runs_dir() == Path("..") / "runs" / "notebooks"
    monkeypatch.chdir(tmp_path)
    assert runs_dir() == Path("runs") / "notebooks"


def test_cae_config_takes_the_data_and_the_parameters(rgb_npz):
    train = load_course_data(rgb_npz).train
    default = preset("cae")
    cfg = cae_config(train, rgb_npz, latent_dim=8, temperature=0.2, epochs=3, seed=4, batch_size=64)
    assert (cfg.model.in_channels, cfg.model.image_size) == (3, 28)
    assert (cfg.model.latent_dim, cfg.loss.temperature, cfg.train.epochs, cfg.train.seed, cfg.train.batch_size) == (8, 0.2, 3, 4, 64)
    assert cfg.dataset == str(rgb_npz), "your own file: training must be able to reload it"
    digits = load_course_data("digits", fast=True).test
    kept = cae_config(digits, "digits", "cvae")
    assert kept.model.latent_dim == default.model.latent_dim and kept.loss.temperature == default.loss.temperature
    assert kept.model.variant == "vae" and kept.dataset == "digits" and kept.model.in_channels == 1
    assert cae_config(train, epochs=30, fast=True).train.epochs == FAST_SIZES["epochs"]


def test_fast_training_saves_nothing(rgb_npz, tmp_path):
    data = load_course_data(rgb_npz, fast=True)
    cfg = cae_config(data.train, rgb_npz, latent_dim=4, batch_size=64, fast=True)
    model, history, where = load_or_train_cae(cfg, data.fit, data.val, out=tmp_path / "run", fast=True)
    assert len(history) == 1 and "FAST mode" in where and not model.training
    assert not (tmp_path / "run").exists()
    _, history, where = quick_train(cfg, data.fit.sample(64))
    assert where == "trained on 64 images for 1 epoch(s), not saved"


@pytest.mark.filterwarnings("ignore:the contrastive loss ended")  # one epoch learns nothing: not the point here
def test_load_or_train_saves_then_loads(tmp_path):
    data = load_course_data("digits")
    cfg = cae_config(data.train, "digits", latent_dim=4, epochs=1, batch_size=256)
    _, _, where = load_or_train_cae(cfg, data.fit, data.val, out=tmp_path / "run")
    assert where.startswith("trained, saved to") and (tmp_path / "run" / "model.pt").exists()
    _, history, where = load_or_train_cae(cfg, data.fit, data.val, out=tmp_path / "run")
    assert where.startswith("loaded") and len(history) == 1


def test_markdown_table_formats_and_escapes():
    table = markdown_table([{"name": "a|b", "acc": np.float32(0.87654)}, {"name": "c", "acc": None, "extra": 3}], digits=2)
    assert isinstance(table, MarkdownTable) and table._repr_markdown_() == table.data == str(table)  # a notebook renders it
    assert table.data.splitlines() == ["| name | acc | extra |", "|---|---|---|", "| a\\|b | 0.88 | – |", "| c | – | 3 |"]
    with pytest.raises(ValueError, match="at least one row"):
        markdown_table([])


def test_balance_and_subgroup_tables():
    balance = {"train": {"n": 4, "counts": [1, 3], "majority_floor": 0.75}, "test": {"n": 2, "counts": [1, 1], "majority_floor": 0.5}}
    lines = balance_table(balance, ["normal", "pneumonia"]).data.splitlines()
    assert lines[0] == "| split | n | normal | pneumonia | majority-class floor |"
    assert lines[2] == "| train | 4 | 1 | 3 | **0.750** |"
    groups = [{"cluster": 0, "size": 5, "majority_label": 1, "purity": 0.8, "label_counts": {0: 1, 1: 4}},
              {"cluster": 1, "size": 0, "majority_label": None, "purity": 0.0, "label_counts": None}]
    lines = subgroup_table(groups, ["normal", "pneumonia"]).data.splitlines()
    assert lines[2] == "| c0 | 5 | pneumonia | 80% | normal: 1, pneumonia: 4 |"
    assert lines[3] == "| c1 | 0 | – | 0% |  |"


def test_committed_results_show_files_or_say_how_to_make_them(tmp_path):
    missing = committed_results(tmp_path, "breastmnist", "augment")
    assert len(missing) == 1 and "augment-benchmark --dataset breastmnist" in missing[0].data
    (tmp_path / "x_benchmark.md").write_text("# title\n| a |\n|---|\n")
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4b00000000049454e44ae426082")
    (tmp_path / "x_benchmark.png").write_bytes(png)
    shown = committed_results(tmp_path, "x", "benchmark")
    assert shown[0].data == "| a |\n|---|\n" and isinstance(shown[1], Image) and len(shown) == 2
    (tmp_path / "x_augment.json").write_text('{"conclusion": "no help"}')
    assert "no help" in committed_results(tmp_path, "x", "augment")[0].data
    with pytest.raises(ValueError, match="benchmark"):
        committed_results(tmp_path, "x", "speed")
