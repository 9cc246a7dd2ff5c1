"""Checkpoints cannot run code (issue 24), and damaged or foreign checkpoints get one clear message.

A ``model.pt`` is a pickle inside a zip file, and unpickling can call any importable function with
any arguments. cae-lib saves only tensors and plain data and loads with ``weights_only=True``, so a
file that asks for anything else is refused unread. The oracle: the same malicious file, loaded
with ``weights_only=False`` in a separate process, really does write its marker file; through
every command and the Python API of cae-lib, it never does.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cae_lib.checkpoint import CheckpointError, load_checkpoint, plain_data, read_checkpoint, save_checkpoint
from cae_lib.course import load_or_train_cae
from cae_lib.data import load_dataset
from cae_lib.config import CAEConfig
from cae_lib.evaluate import evaluate_checkpoint
from cae_lib.experiment import pretrained_path
from cli_helpers import SMALL, make_npz, run_cli, train_own_run

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "medmnist"


class WritesMarker:
    """A pickled object whose unpickling writes a marker file: ``Path(marker).write_text("ran")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.write_text, (pathlib.Path(self.marker), "this checkpoint ran code"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run trained on the user's own .npz: ``home/runs/my/model.pt``, resumable."""
    home = train_own_run(tmp_path_factory.mktemp("user"))
    return home / "runs" / "my"


@pytest.fixture
def malicious(run, tmp_path):
    """``(run folder, marker)``: a copy of ``run`` whose model.pt also carries a :class:`WritesMarker`.

    Everything else in the file is the real run's, so only ``weights_only=True`` stands between
    loading it and running the code.
    """
    folder = tmp_path / "evil_run"
    folder.mkdir()
    marker = tmp_path / "MARKER"
    payload = torch.load(run / "model.pt", weights_only=True)
    payload["extra"]["note"] = WritesMarker(marker)
    torch.save(payload, folder / "model.pt")
    (folder / "model.json").write_text((run / "model.json").read_text())
    return folder, marker


def test_the_malicious_file_really_runs_its_code_when_unpickled(malicious):
    """The oracle: without ``weights_only`` the marker appears (in another process, to keep this one clean)."""
    folder, marker = malicious
    code = f"import torch; torch.load({str(folder / 'model.pt')!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent)
    assert marker.read_text() == "this checkpoint ran code"


def _refused(err: str) -> None:
    assert "will not unpickle arbitrary objects" in err and "(it asks for " in err and "python -m cae_lib train" in err, err


def test_python_api_refuses_it_unread(run, malicious):
    folder, marker = malicious
    for load in (read_checkpoint, load_checkpoint):
        with pytest.raises(CheckpointError) as err:
            load(folder / "model.pt")
        _refused(str(err.value))
    with pytest.raises(CheckpointError) as err:
        evaluate_checkpoint(folder, dataset=str(run.parent.parent / "mydata.npz"))
    _refused(str(err.value))
    config = CAEConfig.from_dict(read_checkpoint(run)["config"])
    with pytest.raises(CheckpointError) as err:  # the notebooks' "load the checkpoint if it exists, else train"
        load_or_train_cae(config, load_dataset(str(run.parent.parent / "mydata.npz"), "train"), out=folder)
    _refused(str(err.value))
    assert not marker.exists()


@pytest.mark.parametrize("command", ["evaluate", "sample", "train --resume", "demo"])
def test_every_command_refuses_it_unread(command, malicious, capsys, tmp_path, monkeypatch):
    folder, marker = malicious
    monkeypatch.chdir(tmp_path)
    argv = {
        "evaluate": ["evaluate", "--checkpoint", folder],
        "sample": ["sample", "--checkpoint", folder, "--out", tmp_path / "s.png"],
        "train --resume": ["train", "--out", folder, "--resume", "--no-progress"],
        "demo": ["demo", "--dataset", "digits", "--out", tmp_path / "report", "--no-progress"],
    }[command]
    if command == "demo":  # the demo loads report/model/model.pt when its settings match
        (tmp_path / "report").mkdir()
        (folder).rename(tmp_path / "report" / "model")
    code, out, err = run_cli(capsys, *argv)
    assert code != 0
    _refused(err)
    assert not marker.exists()


def test_a_malicious_imagenet_weights_file_in_the_torch_cache_is_refused_unread(tmp_path, monkeypatch):
    """torch.hub unpickles with weights_only=False by default; the ResNet baseline asks for True."""
    from cae_lib.baselines.resnet import PretrainedWeightsUnavailable, build_resnet18, resnet18_weights_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    path = resnet18_weights_path()
    path.parent.mkdir(parents=True)
    marker = tmp_path / "MARKER"
    torch.save({"conv1.weight": torch.zeros(1), "x": WritesMarker(marker)}, path)
    with pytest.raises(PretrainedWeightsUnavailable, match="will not unpickle arbitrary objects"):
        build_resnet18(1, 2, weights="imagenet")
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------
# What cae-lib writes is always loadable with weights_only=True
# ------------------------------------------------------------------------------------------------
def test_plain_data_converts_numpy_and_names_anything_else():
    out = plain_data({"a": np.float32(0.5), "b": [np.int64(3), (1, "x")], "c": np.arange(3), "d": None})
    assert out["a"] == 0.5 and type(out["a"]) is float and type(out["b"][0]) is int and out["b"][1] == (1, "x")
    assert torch.equal(out["c"], torch.arange(3))
    with pytest.raises(TypeError, match=r"checkpoint\['extra'\]\['when'\] is a pathlib.PosixPath"):
        plain_data({"extra": {"when": Path("/x")}})
    with pytest.raises(TypeError, match="keys must be str or int"):
        plain_data({(1, 2): 0})


def test_a_checkpoint_that_could_not_be_loaded_safely_is_never_written(run, tmp_path):
    model, config, _ = load_checkpoint(run)
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, config)
    before = path.read_bytes()
    with pytest.raises(TypeError, match="extra"):
        save_checkpoint(path, model, config, extra={"config": config})  # a dataclass, not its .to_dict()
    assert path.read_bytes() == before  # the earlier checkpoint is untouched


@pytest.mark.parametrize("options", [[], ["--ema-decay", "0.5", "--epochs", "2"], ["--preset", "vae"]])
def test_every_checkpoint_train_writes_loads_with_weights_only(options, tmp_path, monkeypatch, capsys):
    make_npz(tmp_path / "d.npz", n=(120, 40, 40))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "train", "--dataset", "d.npz", "--out", "r", *SMALL, *options)
    assert code == 0, err
    payload = torch.load(tmp_path / "r" / "model.pt", weights_only=True)
    assert payload["trainer_state"]["optimizer"]["state"] and payload["history"]
    json.loads((tmp_path / "r" / "model.json").read_text())  # the settings file beside it is plain JSON


@pytest.mark.parametrize("name", ["pneumoniamnist", "breastmnist"])
def test_shipped_checkpoints_load_with_weights_only(name):
    payload = torch.load(pretrained_path(name, "cae"), weights_only=True)
    assert payload["format"] == "cae-lib-checkpoint/1" and payload["model_state"]


@pytest.mark.skipif(not (SHARED / "breastmnist.npz").is_file(), reason="needs ../shared/data/medmnist")
@pytest.mark.parametrize("name", ["breastmnist", "pneumoniamnist"])
def test_shipped_checkpoints_reproduce_their_model_card_metrics(name):
    card = json.loads(pretrained_path(name, "cae").with_name(f"{name}_cae_metrics.json").read_text())
    metrics = evaluate_checkpoint(pretrained_path(name, "cae"), data_dir=SHARED)
    for key in ("hungarian_acc", "nmi", "knn_acc", "linear_acc", "linear_balanced_acc", "majority_floor"):
        assert metrics[key] == pytest.approx(card[key], abs=1e-12), key


# ------------------------------------------------------------------------------------------------
# Damaged, foreign and edited checkpoints; data that is gone
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "empty", "text"])
def test_a_damaged_checkpoint_is_named_with_its_size_and_the_fix(damage, run, tmp_path, capsys):
    path = tmp_path / "model.pt"
    path.write_bytes({"truncated": (run / "model.pt").read_bytes()[:5000], "empty": b"", "text": b"hello\n"}[damage])
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", path)
    assert code == 2 and "is damaged or not a PyTorch file" in err and "bytes" in err and "Copy it again" in err, err
    assert path.stat().st_size == {"truncated": 5000, "empty": 0, "text": 6}[damage]  # nothing deleted or rewritten


def test_a_bare_state_dict_from_another_tool_is_named_as_such(run, tmp_path):
    model, _, _ = load_checkpoint(run)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(CheckpointError, match=r"is a bare state_dict \(\d+ tensors, e.g. '.+'\), not a cae-lib checkpoint.*save_checkpoint"):
        load_checkpoint(tmp_path / "weights.pt")
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "lightning.pt")
    with pytest.raises(CheckpointError, match=r"it has keys 'state_dict', 'epoch'"):
        load_checkpoint(tmp_path / "lightning.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="found a list"):
        load_checkpoint(tmp_path / "list.pt")


@pytest.mark.parametrize("edit", ["changed", "broken"])
def test_a_hand_edited_model_json_changes_nothing_and_evaluate_says_so(edit, run, tmp_path, capsys):
    copy = tmp_path / "run"
    copy.mkdir()
    (copy / "model.pt").write_bytes((run / "model.pt").read_bytes())
    sidecar = json.loads((run / "model.json").read_text())
    sidecar["config"]["model"]["latent_dim"] = 64
    (copy / "model.json").write_text(json.dumps(sidecar) if edit == "changed" else "{ not json")
    code, out, err = run_cli(capsys, "evaluate", "--checkpoint", copy)
    assert code == 0, err
    expected = ("model.latent_dim: 8 in the checkpoint, 64 in the .json" if edit == "changed" else "is not the JSON cae-lib wrote")
    assert expected in err and "editing it changes nothing" in err, err
    assert "Hungarian" in out  # evaluated with the checkpoint's own settings


def test_an_unedited_model_json_gives_no_note(run, capsys):
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", run)
    assert code == 0 and "model.json" not in err, err


def test_data_deleted_after_training_is_named_with_the_fix(run, tmp_path, capsys):
    data = tmp_path / "gone.npz"
    make_npz(data, n=(120, 40, 40))
    code, _, err = run_cli(capsys, "train", "--dataset", data, "--out", tmp_path / "r", *SMALL)
    assert code == 0, err
    data.unlink()
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", tmp_path / "r")
    assert code == 2 and f"was trained on {data}, which no longer exists" in err and "--dataset PATH" in err, err
