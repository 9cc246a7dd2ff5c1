"""A new user's own path (issue 10): no silent wrong result, no raw traceback, clear messages, clear --help.

Each test is one case a new user met, and the class of problem it stands for. The run folders,
locks and output paths (lost work) are in ``test_run_folders.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cae_lib.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from cae_lib.cli import build_parser
from cae_lib.commands.options import HelpFormatter
from cae_lib.comparison import METHODS
from cae_lib.config import CAEConfig, ModelConfig, TrainConfig
from cae_lib.data import load_dataset, save_npz
from cae_lib.data.download import manual_instructions
from cae_lib.data.registry import get_info
from cae_lib.embed import embed
from cae_lib.evaluate import evaluate_checkpoint
from cae_lib.experiment import check_train_settings, training_warnings
from cae_lib.losses import CAEObjective
from cae_lib.models import ContrastiveAutoencoder
from cae_lib.batches import ImageBatches
from cae_lib.run_trainer import RunTrainer, TrainingDiverged
from cli_helpers import SMALL, digits_split, make_folder, make_npz, no_medmnist_files, run_cli, train_own_run


@pytest.fixture(autouse=True)
def no_official_data(tmp_path, monkeypatch):
    no_medmnist_files(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    """A model trained with ``train --dataset mydata.npz`` from the folder that holds the file."""
    home = train_own_run(tmp_path_factory.mktemp("user"))
    return home


# --------------------------------------------------------------------------------------------
# Silent wrong results
# --------------------------------------------------------------------------------------------
def test_divergence_stops_at_the_step_naming_the_term_and_the_fix(tmp_path, capsys):
    """Case: `--lr 1e3` exited 0 with infinite BatchNorm statistics. Class: any NaN/Inf in loss, weights or buffers.

    Since the warm-up schedule, `--lr 1e3` no longer blows up on digits; `--lr 1e10` does, at the first
    step. The weight and buffer cases (a finite loss over an infinite ``running_var``) are the
    poisoned-trainer tests below.
    """
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", "--epochs", "3", "--lr", "1e10", "--out", tmp_path / "div", "--no-progress")
    assert code == 2
    assert "diverged at epoch 1, step" in err and "is nan" in err and "--lr" in err and "try 0.003)" in err  # the default, not 1e+09, which diverges too
    assert not (tmp_path / "div").exists()  # nothing half-trained left behind


def _tiny_trainer(poison: str | None, kind: str) -> RunTrainer:
    cfg = CAEConfig(dataset="synthetic", model=ModelConfig(latent_dim=8, width=4), train=TrainConfig(epochs=1, batch_size=16, device="cpu"))
    model = ContrastiveAutoencoder(cfg.model)
    objective = CAEObjective.from_config(cfg)

    def poisoned(m, batch, g):
        loss, logs = objective(m, batch, g)
        tensors = dict(m.named_buffers()) if kind == "buffer" else dict(m.named_parameters())
        with torch.no_grad():
            tensors[poison].fill_(math.inf if kind == "buffer" else math.nan)
        return loss, logs

    rng = np.random.default_rng(0)
    data = ImageBatches(rng.integers(0, 255, (48, 28, 28), dtype=np.uint8), rng.integers(0, 2, 48))
    return RunTrainer(model, poisoned, data, cfg.train, progress=False)


@pytest.mark.parametrize("kind,name", [("buffer", "encoder.backbone.net.1.1.running_var"), ("parameter", "encoder.backbone.net.1.0.weight")])
def test_the_guard_covers_parameters_and_buffers(kind, name):
    with pytest.raises(TrainingDiverged, match=rf"epoch 1, step \d+: {kind} {name} became (nan|inf).*--lr"):
        _tiny_trainer(name, kind).fit()


def test_a_diverged_checkpoint_is_refused_when_loaded(tmp_path):
    model = ContrastiveAutoencoder(ModelConfig(latent_dim=8, width=4))
    buffer = next(t for n, t in model.named_buffers() if n.endswith("running_var"))
    buffer.fill_(math.inf)
    path = save_checkpoint(tmp_path / "model.pt", model, CAEConfig(model=ModelConfig(latent_dim=8, width=4)))
    with pytest.raises(CheckpointError, match="diverged.*--lr"):
        load_checkpoint(path)


def test_a_contrastive_loss_at_chance_is_not_reported_as_trained(tmp_path, capsys):
    """Case: a model that never left chance was reported as trained. Class: finished runs that learned nothing."""
    cfg = CAEConfig()
    chance = math.log(2 * 256 - 1)
    assert training_warnings([{"contrastive": chance - 0.01}], cfg, 4708)
    assert not training_warnings([{"contrastive": 3.5}], cfg, 4708)
    assert not training_warnings([{"recon": 0.1}], CAEConfig(), 4708)  # no contrastive term: nothing to judge
    code, out, err = run_cli(capsys, "train", "--dataset", "digits", "--lr", "1e-9", "--out", tmp_path / "chance", *SMALL)
    assert code == 0 and "trained" in out
    assert "warning: the contrastive loss ended at" in err and "chance level" in err and "--epochs" in err
    stored = json.loads((tmp_path / "chance" / "model.json").read_text())["extra"]["warnings"]
    assert stored and "chance" in stored[0]
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", tmp_path / "chance")
    assert code == 0 and "when this checkpoint was trained, the contrastive loss" in err


def test_own_npz_checkpoint_is_evaluated_and_sampled_from_any_folder(own_run, tmp_path, monkeypatch, capsys):
    """Case: after `train --dataset mydata.npz`, evaluate said "Unknown dataset 'mydata'" (and only worked after cd)."""
    run = own_run / "runs" / "my"
    data = json.loads((run / "model.json").read_text())["data"]
    assert data["kind"] == "npz" and data["path"] == str(own_run / "mydata.npz") and data["fingerprint"].startswith("md5:")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, _ = run_cli(capsys, "evaluate", "--checkpoint", run / "model.pt", "--json", "m.json")
    assert code == 0 and json.loads(Path("m.json").read_text())["data"]["path"] == str(own_run / "mydata.npz")
    code, _, _ = run_cli(capsys, "evaluate", "--checkpoint", run, "--dataset", os.path.relpath(own_run / "mydata.npz"))
    assert code == 0  # the data given by a relative path from here is the same data
    code, _, _ = run_cli(capsys, "sample", "--checkpoint", run, "--n", "8", "--out", "s.png")
    assert code == 0 and Path("s.png").is_file()


def test_a_folder_named_like_a_registered_dataset_is_never_the_official_one(tmp_path, monkeypatch, capsys):
    """Case: a folder `breastmnist/` was scored on the official BreastMNIST test split."""
    make_folder(tmp_path / "breastmnist", per_class=20)
    monkeypatch.chdir(tmp_path)
    code, _, _ = run_cli(capsys, "train", "--dataset", "./breastmnist", "--out", "runs/bm", *SMALL)
    assert code == 0
    stored = json.loads(Path("runs/bm/model.json").read_text())
    assert stored["config"]["dataset"] == str(tmp_path / "breastmnist") and stored["data"]["kind"] == "folder"
    code, _, _ = run_cli(capsys, "evaluate", "--checkpoint", "runs/bm", "--json", "m.json")
    metrics = json.loads(Path("m.json").read_text())
    assert code == 0 and metrics["n_test"] == 8  # 20 % of 2 x 20 images; the official test split has 156


def test_other_data_than_the_checkpoints_is_an_error_naming_both(tmp_path, monkeypatch, capsys):
    """Class: the data a checkpoint is scored or sampled on must be the data it was trained on (fingerprints)."""
    monkeypatch.chdir(tmp_path)
    make_npz(tmp_path / "data.npz")
    assert run_cli(capsys, "train", "--dataset", "data.npz", "--out", "run", *SMALL)[0] == 0
    make_npz(tmp_path / "data.npz", offset=7)  # the same file name, other images
    for argv in (["evaluate", "--checkpoint", "run"], ["sample", "--checkpoint", "run", "--out", "s.png"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and "not the same data" in err and str(tmp_path / "data.npz") in err and err.count("md5:") == 2
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", "run", "--dataset", "digits")
    assert code == 2 and "bundled:sklearn-digits" in err
    with pytest.raises(CheckpointError, match="not the same data"):  # the Python entry point checks too
        evaluate_checkpoint(tmp_path / "run" / "model.pt")


def test_options_that_would_be_ignored_or_give_empty_results_are_refused(own_run, capsys):
    """Case: `benchmark --seeds 0` wrote an empty table; `evaluate --size` was accepted and ignored."""
    code, _, err = run_cli(capsys, "benchmark", "--dataset", "digits", "--seeds", "0")
    assert code == 2 and "--seeds" in err
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", own_run / "runs" / "my", "--size", "64")
    assert code == 2 and "--size 64" in err and "28 px" in err
    assert run_cli(capsys, "augment-benchmark", "--size", "64")[0] == 2  # no such option: it would be ignored


# --------------------------------------------------------------------------------------------
# Tracebacks and unclear messages: one line that names the problem and the fix
# --------------------------------------------------------------------------------------------
def _write_bad_npzs(folder: Path) -> None:
    (x, y), (xv, yv) = digits_split("train", 60), digits_split("val", 20)
    with open(folder / "strlabels.npz", "wb") as f:
        names = np.array(["cat", "dog"])
        np.savez(f, **{f"{s}_images": x[:20] for s in ("train", "val", "test")}, **{f"{s}_labels": names[y[:20] % 2] for s in ("train", "val", "test")})
    with open(folder / "mixed.npz", "wb") as f:
        np.savez(f, train_images=x, val_images=np.repeat(xv[..., None], 3, -1), test_images=xv,
                 train_labels=y, val_labels=yv, test_labels=yv)
    make_folder(folder / "tiny", per_class=4)
    (folder / "afile.txt").write_text("not a folder\n")
    (folder / "no_model").mkdir()


TRAIN = ["train", "--out", "run", "--no-progress"]


@pytest.mark.parametrize(
    "argv,expected",
    [
        (TRAIN + ["--dataset", "strlabels.npz", "--epochs", "1"], "labels are text ('cat', 'dog'"),
        (TRAIN + ["--dataset", "mixed.npz", "--epochs", "1"], "mix grey and colour images"),
        (TRAIN + ["--dataset", "tiny", "--epochs", "1"], "too few images to split: 8 in all (benign: 4, malignant: 4)"),
        (TRAIN + ["--dataset", "", "--epochs", "1"], "dataset name is empty"),
        (TRAIN + ["--dataset", "pneumoniamnist", "--data-dir", "afile.txt"], "is a file, not a folder"),
        (TRAIN + ["--dataset", "digits", "--data-dir", "afile.txt"], "is a file, not a folder"),  # whatever the dataset
        (TRAIN + ["--dataset", "digits", "--batch-size", "0"], "at least 2"),
        (TRAIN + ["--dataset", "digits", "--batch-size", "-5"], "at least 2"),
        (TRAIN + ["--dataset", "digits", "--batch-size", "100000"], "larger than the 1259 training images"),
        (["evaluate", "--checkpoint", "no_model"], "is a folder without a model.pt"),
        (["evaluate", "--checkpoint", "missing.pt"], "does not exist"),
        (["evaluate", "--checkpoint", "x.pt", "--seed", "-1"], "--seed: '-1' is not a whole number from 0"),
        (["benchmark", "--methods", "pixels"], "invalid choice: 'pixels'"),
    ],
)
def test_expected_errors_are_one_clear_line(argv, expected, tmp_path, monkeypatch, capsys):
    """Cases: raw tracebacks and torch errors for user mistakes. Class: every expected error is one line, exit code 2."""
    _write_bad_npzs(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and expected in err, err


def test_a_grey_model_on_colour_data_says_so(own_run):
    """Case: a grey checkpoint applied to RGB data in the library gave a raw torch channel error."""
    model, _, _ = load_checkpoint(own_run / "runs" / "my")
    x, y = digits_split("test", 10)
    rgb = load_dataset(save_npz(own_run / "rgb.npz", {s: (np.repeat(x[..., None], 3, -1), y) for s in ("train", "val", "test")}), "test")
    with pytest.raises(ValueError, match="takes grey 28 x 28 images, but these are RGB 28 x 28"):
        embed(model, rgb)


def test_messages_name_the_command_line_options_too():
    """Case: messages pointed to Python-only options. Class: every hint names the CLI option beside the Python name."""
    cfg = CAEConfig()
    cfg.train.batch_size = 1
    with pytest.raises(ValueError, match="--batch-size"):
        check_train_settings(cfg, 100)
    text = manual_instructions(get_info("pneumoniamnist"), 28, Path("/data"))
    assert "--data-dir" in text and "--dataset digits" in text
    assert "--epochs" in training_warnings([{"contrastive": 6.3}], CAEConfig(), 4708)[0]


# --------------------------------------------------------------------------------------------
# --help
# --------------------------------------------------------------------------------------------
def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", list(_subparsers()))
def test_every_option_has_help_that_shows_its_default(command):
    parser = _subparsers()[command]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{command} {action.option_strings} has no help text"
        if action.nargs != 0 and not action.required:  # an option that takes a value: say what it is when left out
            shown = HelpFormatter("x")._get_help_string(action)
            assert "default" in shown, f"{command} {action.option_strings}: no default in {shown!r}"
    for markup in ("``", ":func:", ":class:", ":mod:", ":data:"):
        assert markup not in parser.format_help() and markup not in build_parser().format_help()


def test_methods_lists_the_valid_names(capsys):
    text = _subparsers()["benchmark"].format_help()
    for name in METHODS:
        assert name in text


def test_evaluate_shows_progress(own_run, capsys):
    """Case: `evaluate` and `demo` were silent for 20 to 60 s. Class: long steps say what they do and when they end."""
    code, out, _ = run_cli(capsys, "evaluate", "--checkpoint", own_run / "runs" / "my")
    assert code == 0
    assert "loading the checkpoint" in out and "embedding" in out and out.count("done in") >= 3


def test_train_on_own_folder_then_resume_from_another_folder(tmp_path, monkeypatch, capsys):
    """A folder trained from a path used to work only after cd into its parent; --resume must find it too."""
    make_folder(tmp_path / "data" / "xray", per_class=20)
    monkeypatch.chdir(tmp_path / "data")
    assert run_cli(capsys, "train", "--dataset", "xray", "--out", tmp_path / "run", *SMALL)[0] == 0
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tmp_path / "run", tmp_path / "run2")
    code, _, err = run_cli(capsys, "train", "--dataset", "data/xray", "--out", tmp_path / "run2", "--resume", "--epochs", "2",
                           "--width", "4", "--latent-dim", "8", "--no-progress")
    assert code == 2 and "train.epochs (--epochs): 1 in the checkpoint, 2 now" in err
    code, _, _ = run_cli(capsys, "train", "--dataset", "data/xray", "--out", tmp_path / "run2", "--resume", *SMALL)
    assert code == 0


def test_a_registry_name_beside_a_same_named_folder_says_which_one_it_loads(tmp_path, monkeypatch):
    """Class (found in review): a bare name loads the official set even when a folder of that name is here; say so."""
    (tmp_path / "digits").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match=r"pass it as a path: './digits'"):
        data = load_dataset("digits", "test")
    assert data.source.startswith("sklearn")


def test_benchmark_passes_on_the_warning_that_a_run_learned_nothing(tmp_path, monkeypatch, capsys):
    """Case: `benchmark` printed only its table for a CAE whose loss ended at chance (train warned). Class: warnings lost on the way."""
    import cae_lib.commands.benchmark as benchmark_command
    import cae_lib.comparison as comparison
    import cae_lib.experiment as experiment

    monkeypatch.setattr(experiment, "training_warnings", lambda history, cfg, n: [f"marker after {len(history)} epoch(s)"])
    charted = []
    real_chart = benchmark_command.plots.results_bar_chart
    monkeypatch.setattr(benchmark_command.plots, "results_bar_chart", lambda rows, **kw: charted.append(rows) or real_chart(rows, **kw))
    monkeypatch.setattr(benchmark_command, "run_one_isolated",  # in this process, so the patch above applies
                        lambda method, dataset, seed, data_dir, epochs, size=28, recipe="default": comparison.run_one(method, dataset, seed, data_dir, epochs, size=size, recipe=recipe))
    code, out, err = run_cli(capsys, "benchmark", "--dataset", "digits", "--methods", "raw_kmeans", "cae", "--seeds", "1",
                             "--epochs", "1", "--out", tmp_path / "bench", "--no-progress")
    assert code == 0 and f"{METHODS['cae']}, seed 0: done in" in out  # no bar: a line per run instead
    assert f"warning: {METHODS['cae']}, seed 0: marker after 1 epoch(s)" in err
    assert err.count("warning:") == 1  # k-means on pixels trains nothing, so it has nothing to warn about
    runs = json.loads((tmp_path / "bench" / "digits_benchmark.json").read_text())["runs"]
    assert [r.get("warnings") for r in runs] == [None, ["marker after 1 epoch(s)"]]
    table = (tmp_path / "bench" / "digits_benchmark.md").read_text()
    assert "one seed (--seeds 3 gives mean ± sd)" in table and "±" not in table.split("Majority-class floor")[1]  # no spread of one value
    assert charted and all(r["accuracy_sd"] is None for r in charted[0])  # and no error bars of zero length in the chart


def test_temperature_is_checked_where_it_is_typed_and_a_hot_one_is_named_at_chance():
    """Case: `--temperature 0.005` failed late with other words than `-1`, and `--temperature 1e6` ended at chance
    with advice about epochs and learning rate only. Class: one message per setting, advice that names the cause."""
    parser = build_parser()
    for bad in ("0.005", "-1", "0", "nan"):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", "--temperature", bad])
    assert parser.parse_args(["train", "--temperature", "0.5"]).temperature == 0.5
    hot, usual = CAEConfig(), CAEConfig()
    hot.loss.temperature = 1e6
    at_chance = [{"contrastive": math.log(2 * 256 - 1)}]
    assert "--temperature" in training_warnings(at_chance, hot, 4708)[0]
    assert "--temperature" not in training_warnings(at_chance, usual, 4708)[0]
