"""The command line, end to end on the bundled digits set (no data folder needed) and on small synthetic files."""

import json

import numpy as np
import pytest

from cae_lib.cli import COMMANDS, build_parser, main
from cae_lib.commands.demo import resolve_default_dataset, run_demo
from cae_lib.data import load_dataset
from cae_lib.evaluate import evaluate_checkpoint


@pytest.fixture
def no_data_dir(tmp_path, monkeypatch):
    """An empty data folder and no CAE_DATA_DIR: only the bundled digits set is available."""
    empty = tmp_path / "empty_data"
    empty.mkdir()
    monkeypatch.setenv("CAE_DATA_DIR", str(empty))
    return empty


@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits_run")
    assert main(["train", "--dataset", "digits", "--epochs", "2", "--seed", "1", "--out", str(out), "--no-progress"]) == 0
    return out / "model.pt"


def test_train_on_digits_with_no_data_folder(no_data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--epochs", "1", "--latent-dim", "8", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "trained CAE on digits for 1 epoch in" in printed and str(out / "model.pt") in printed
    config = json.loads((out / "model.json").read_text())["config"]
    assert config["model"]["latent_dim"] == 8 and config["dataset"] == "digits"


def test_train_presets_select_the_ablation(tmp_path, capsys):
    assert main(["train", "--dataset", "digits", "--preset", "vae", "--epochs", "1", "--out", str(tmp_path / "v"), "--no-progress"]) == 0
    assert "trained VAE on digits" in capsys.readouterr().out


def test_evaluate_writes_the_required_keys(digits_checkpoint, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--checkpoint", str(digits_checkpoint), "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    for key in ("hungarian_acc", "nmi", "ari", "knn_acc", "linear_acc", "majority_floor", "n_test"):
        assert key in metrics
    assert metrics["n_test"] == len(load_dataset("digits", split="test").labels)
    assert metrics["majority_floor"] == pytest.approx(0.1, abs=0.02)
    # Known answers: the headline is the default clusterer's entry of the per-method table, and the python API
    # gives the same number; two epochs on digits already put the codes far above the 10-class floor.
    assert metrics["hungarian_acc"] == metrics["hungarian_by_method"]["spectral"]
    assert metrics["hungarian_acc"] == evaluate_checkpoint(digits_checkpoint)["hungarian_acc"]
    assert metrics["hungarian_acc"] > 3 * metrics["majority_floor"], metrics["hungarian_acc"]
    assert metrics["train_config"]["dataset"] == "digits"
    printed = capsys.readouterr().out
    assert "features: projection/none" in printed  # the step message names the fixed features ...
    assert "| Hungarian acc (spectral (kNN graph), k = #classes, on projection/none) |" in printed  # ... and so does the table


def test_sample_writes_grid_settings_and_a_loadable_npz(digits_checkpoint, tmp_path):
    grid, npz = tmp_path / "grid.png", tmp_path / "samples.npz"
    assert main(["sample", "--checkpoint", str(digits_checkpoint), "--n", "12", "--label", "3", "--out", str(grid), "--npz", str(npz)]) == 0
    assert grid.read_bytes()[:4] == b"\x89PNG"
    settings = json.loads(grid.with_suffix(".json").read_text())
    assert settings["n"] == 12 and settings["label"] == 3
    back = load_dataset(str(npz), split="train")
    assert back.images.shape == (12, 28, 28) and back.images.dtype == np.uint8
    assert set(back.labels.tolist()) == {3}


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--dataset", "pneumoniamnst", "--epochs", "1", "--no-progress"], "pneumoniamnist"),
        (["sample", "--checkpoint", "missing.pt"], "does not exist"),
        (["train", "--dataset", "digits", "--temperature", "0", "--no-progress"], "temperature"),
        (["train", "--dataset", "digits", "--warmup-fraction", "1", "--no-progress"], "--warmup-fraction"),
        (["train", "--dataset", "digits", "--schedule", "step", "--no-progress"], "--schedule"),
    ],
)
def test_bad_input_gives_a_clear_error_and_exit_code_2(argv, message, tmp_path, capsys):
    assert main(argv + (["--out", str(tmp_path / "o")] if argv[0] == "train" else [])) == 2
    assert message in capsys.readouterr().err


def test_sample_rejects_unknown_label_and_bad_n(digits_checkpoint, tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(digits_checkpoint), "--label", "42", "--out", str(tmp_path / "g.png")]) == 2
    assert "42" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(digits_checkpoint), "--n", "0", "--out", str(tmp_path / "g.png")]) == 2


def test_datasets_command_lists_everything(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("pneumoniamnist", "bloodmnist", "digits"):
        assert name in out


def test_demo_writes_the_report_folder_on_digits(no_data_dir, tmp_path):
    out = tmp_path / "report"
    metrics = run_demo(dataset="digits", out=out, epochs=1, progress=False)
    for name in ("metrics.json", "report.md", "config.json", "reconstructions.png", "latent_map.png", "confusion_matrix.png",
                 "cluster_montages.png", "samples.png", "training_curves.png"):
        assert (out / name).is_file(), name
    cae = metrics["results"]["CAE + spectral (this model)"]
    assert cae["hungarian_acc"] == cae["hungarian_by_method"]["spectral"] and cae["hungarian_acc"] > 2 * cae["majority_floor"]
    assert f"{cae['hungarian_acc']:.3f}" in (out / "report.md").read_text()  # the report prints the measured number
    assert "Hungarian" in (out / "report.md").read_text()


def test_demo_falls_back_to_digits_with_a_notice_when_offline(no_data_dir, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    name, notice = resolve_default_dataset(None, None)
    assert name == "digits" and notice and "digits" in notice


def test_every_command_module_is_wired_into_the_parser():
    """One module per command, named after it, each listed by --help."""
    assert list(COMMANDS) == ["datasets", "train", "evaluate", "benchmark", "sample", "augment-benchmark", "demo"]
    text = build_parser().format_help()
    for name, command in COMMANDS.items():
        assert f"    {name} " in text or f"    {name}\n" in text, name
        assert command.__name__ == "cae_lib.commands." + name.replace("-", "_")


def test_schedule_steps_and_precision_options_reach_the_config():
    from cae_lib.cli import build_parser
    from cae_lib.commands.train import config_from_args

    args = build_parser().parse_args(["train", "--steps", "50", "--schedule", "constant", "--warmup-fraction", "0.2", "--precision", "fp32",
                                      "--recon-views", "1", "--ema-decay", "0.95"])
    cfg = config_from_args(args)
    assert (cfg.train.steps, cfg.train.schedule, cfg.train.warmup_fraction, cfg.train.precision) == (50, "constant", 0.2, "fp32")
    assert cfg.loss.recon_views == 1 and cfg.train.ema_decay == 0.95
    defaults = config_from_args(build_parser().parse_args(["train"]))
    assert (defaults.train.schedule, defaults.train.precision, defaults.loss.temperature) == ("cosine", "auto", 0.2)
    assert defaults.loss.recon_views == 2 and defaults.train.ema_decay is None


def test_recipes_set_the_training_budget_and_a_typed_steps_wins(capsys):
    from cae_lib.commands.train import config_from_args
    from cae_lib.config import preset
    from cae_lib.experiment import RECIPES, apply_recipe, recipe_of

    parser = build_parser()
    default = config_from_args(parser.parse_args(["train"]))
    long = config_from_args(parser.parse_args(["train", "--recipe", "long"]))
    assert default.train.steps == 160 and long.train.steps == RECIPES["long"]["steps"] == 1600
    assert config_from_args(parser.parse_args(["train", "--recipe", "long", "--steps", "50"])).train.steps == 50
    assert recipe_of(default) == "default" and recipe_of(long) == "long"
    assert recipe_of(apply_recipe(preset("cae"), "default")) == "default"
    custom = preset("cae")
    custom.train.steps = 7
    assert recipe_of(custom) == "custom"
    with pytest.raises(ValueError, match="unknown recipe 'short'; choose one of default, long"):
        apply_recipe(preset("cae"), "short")
    with pytest.raises(SystemExit):
        parser.parse_args(["benchmark", "--recipe", "short"])
    assert "invalid choice: 'short'" in capsys.readouterr().err


def test_the_command_line_and_the_course_start_without_torchvision():
    """torchvision (1.5 s and about 170 MB to import on this machine) loads only when a ResNet-18 is built.
    Before, every command, even ``--help``, imported it through the baselines module."""
    import subprocess
    import sys

    code = ("import sys, cae_lib.cli, cae_lib.course, cae_lib.comparison, cae_lib.baselines; "
            "print('torchvision' in sys.modules); from cae_lib.baselines import build_resnet18; "
            "build_resnet18(1, 2, weights=None); print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout.split()
    assert out == ["False", "True"]
