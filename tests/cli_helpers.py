"""Helpers for the command-line tests of a new user's own path (test_user_errors, test_run_folders).

``run_cli`` runs ``python -m cae_lib ...`` in this process and fails the test on any traceback;
``make_npz`` and ``make_folder`` write small datasets (from the bundled digits) in the user's formats;
``SMALL`` are the options of a tiny, fast model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cae_lib.cli import main
from cae_lib.data import load_dataset, save_npz

#: A small, fast model: one epoch of a narrow network.
SMALL = ["--epochs", "1", "--width", "4", "--latent-dim", "8", "--no-progress"]


def run_cli(capsys: Any, *argv: Any) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of one command; a traceback anywhere fails the test."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, out + err
    return code, out, err


def digits_split(split: str, n: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    data = load_dataset("digits", split=split)
    rows = np.arange(offset, offset + n) % len(data)
    return data.images[rows], data.labels[rows]


def make_npz(path: Path, n: tuple[int, int, int] = (300, 100, 120), offset: int = 0) -> Path:
    """A MedMNIST-layout .npz of grey 28 x 28 digits (10 classes)."""
    splits = {s: digits_split(s, k, offset) for s, k in zip(("train", "val", "test"), n)}
    return save_npz(path, splits)


def make_folder(path: Path, per_class: int, classes: tuple[str, ...] = ("benign", "malignant")) -> Path:
    """A folder dataset: one sub-folder per class, ``per_class`` PNG images in each."""
    images, labels = digits_split("train", 400)
    for c, name in enumerate(classes):
        folder = path / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(images[labels == c][:per_class]):
            Image.fromarray(img).save(folder / f"{i}.png")
    return path


def train_own_run(home: Path) -> Path:
    """Train a tiny model with ``train --dataset mydata.npz --out runs/my`` from ``home`` (the folder that
    holds the file, made here); returns ``home``."""
    import pytest

    make_npz(home / "mydata.npz")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(home)
        mp.setenv("XDG_CACHE_HOME", str(home / "xdg"))
        assert main(["train", "--dataset", "mydata.npz", "--out", "runs/my", *SMALL]) == 0
    return home


def no_medmnist_files(tmp_path: Path, monkeypatch: Any) -> None:
    """No MedMNIST files and a throw-away cache: only the user's own data (and digits) can be found."""
    empty = tmp_path / "no_medmnist"
    empty.mkdir()
    monkeypatch.setenv("CAE_DATA_DIR", str(empty))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

