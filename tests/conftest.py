"""Shared test fixtures: the read-only MedMNIST folder, synthetic MedMNIST-layout files, a clean env."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

#: ../shared/data/medmnist relative to the repository root (official 28-px files, read-only).
SHARED_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "medmnist"


@pytest.fixture
def shared_data_dir() -> Path:
    """The read-only folder with the official pneumoniamnist.npz and breastmnist.npz (never write into it)."""
    needed = ("pneumoniamnist.npz", "breastmnist.npz")
    if not all((SHARED_DATA_DIR / f).is_file() for f in needed):
        pytest.skip(f"shared MedMNIST files {needed} not found in {SHARED_DATA_DIR}")
    return SHARED_DATA_DIR


def write_medmnist_npz(
    path: Path,
    n: tuple[int, int, int] = (30, 10, 20),
    size: int = 28,
    channels: int = 3,
    n_classes: int = 4,
    seed: int = 0,
    labels_2d: bool = True,
) -> Path:
    """Write a small random .npz in MedMNIST layout: images uint8 (N, H, W[, C]), labels uint8 (N, 1) or (N,)."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for split, count in zip(("train", "val", "test"), n):
        shape = (count, size, size) + ((channels,) if channels > 1 else ())
        arrays[f"{split}_images"] = rng.integers(0, 256, size=shape, dtype=np.uint8)
        labels = (np.arange(count) % n_classes).astype(np.uint8)  # every class present
        arrays[f"{split}_labels"] = labels[:, None] if labels_2d else labels
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


@pytest.fixture
def tiny_rgb_npz(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``tiny_rgb_npz(path=None, **kwargs)`` writes a synthetic 3-channel MedMNIST-layout npz.

    Defaults: 30 / 10 / 20 images of 28 x 28 x 3, 4 classes, labels (N, 1). ``path`` defaults to
    ``tmp_path / "tiny_rgb.npz"``; other keyword arguments go to :func:`write_medmnist_npz`.
    """

    def make(path: str | Path | None = None, **kwargs: Any) -> Path:
        return write_medmnist_npz(Path(path) if path is not None else tmp_path / "tiny_rgb.npz", **kwargs)

    return make


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ``CAE_DATA_DIR``, and a throw-away cache (``XDG_CACHE_HOME``) so ``~/.cache`` is never touched.

    Returns the cache folder the toolkit would default to.
    """
    monkeypatch.delenv("CAE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache" / "cae_lib" / "medmnist"


@pytest.fixture
def no_hang() -> Callable[..., Any]:
    """``no_hang(fn, *args, limit=10, **kwargs)``: run ``fn`` in a thread; fail the test if it runs past ``limit`` s.

    Returns ``fn``'s result or re-raises its exception. A home-made per-test timeout, so a
    regression that makes a download hang fails fast instead of freezing the suite.
    """

    def run(fn: Callable[..., Any], *args: Any, limit: float = 10.0, **kwargs: Any) -> Any:
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = fn(*args, **kwargs)
            except BaseException as err:  # noqa: BLE001 - re-raised in the test thread
                box["error"] = err

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(limit)
        if thread.is_alive():
            pytest.fail(f"{getattr(fn, '__name__', fn)} still running after {limit} s: it hangs")
        if "error" in box:
            raise box["error"]
        return box.get("result")

    return run
