"""The data layer: registry, load_dataset (MedMNIST, digits, own folder / npz), errors, loader, summaries."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import cae_lib.data.checksums as checksums_mod
import cae_lib.data.download as download_mod
from cae_lib.data import (
    ChecksumError,
    CorruptFileError,
    DatasetFallbackWarning,
    DatasetInfo,
    DatasetUnavailableError,
    ImageData,
    class_balance,
    dataset_names,
    format_dataset_table,
    get_info,
    list_datasets,
    load_dataset,
    load_raw,
    resolve_data_dir,
    save_npz,
    stratified_split,
    summarize,
)
from cae_lib.batches import ImageBatches, epoch_batches
from cae_lib.data.registry import MEDMNIST_2D

OFFICIAL = {  # name: (train, val, test), test class counts, majority floor
    "pneumoniamnist": ((4708, 524, 624), [234, 390], 0.625),
    "breastmnist": ((546, 78, 156), [42, 114], 0.731),
}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.fixture
def forbid_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to touch the network fail the test."""

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("no download should be attempted here")

    monkeypatch.setattr(download_mod, "download_file", boom)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------
def test_registry_has_all_medmnist_2d_sets_and_digits() -> None:
    from medmnist.info import INFO

    assert set(dataset_names()) == set(MEDMNIST_2D) | {"digits"} and len(MEDMNIST_2D) == 12
    for name in MEDMNIST_2D:
        info = get_info(name)
        assert info.sizes == (28, 64, 128, 224)
        assert info.url_for(28) == INFO[name]["url"] and info.md5_for(28) == INFO[name]["MD5"]
        assert info.url_for(224) == INFO[name]["url_224"] and info.md5_for(64) == INFO[name]["MD5_64"]
        assert info.n_channels == INFO[name]["n_channels"]
        assert dict(info.n_samples) == INFO[name]["n_samples"]
        assert info.class_names == tuple(INFO[name]["label"][str(i)] for i in range(len(INFO[name]["label"])))
        assert info.filename_for(28) == f"{name}.npz" and info.filename_for(128) == f"{name}_128.npz"
    assert get_info("chestmnist").is_multi_label and not get_info("pneumoniamnist").is_multi_label
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_info("bloodmnist").name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        get_info("bloodmnist").urls[28] = "http://elsewhere"  # type: ignore[index]


def test_digits_registry_counts_match_the_split() -> None:
    info = get_info("digits")
    assert info.sizes == (28,) and info.n_classes == 10 and info.n_channels == 1 and info.is_bundled
    counts = {s: len(load_dataset("digits", s)) for s in ("train", "val", "test")}
    assert counts == dict(info.n_samples) and sum(counts.values()) == 1797


@pytest.mark.parametrize("alias", ["PneumoniaMNIST", "pneumoniamnist", " PNEUMONIAMNIST ", "pneumonia-mnist", "pneumonia"])
def test_names_are_case_insensitive(alias: str) -> None:
    assert get_info(alias).name == "pneumoniamnist"


def test_unknown_name_lists_valid_names_and_suggests() -> None:
    with pytest.raises(ValueError) as exc:
        load_dataset("pneumonamnist")
    msg = str(exc.value)
    assert "Unknown dataset 'pneumonamnist'" in msg and "Did you mean 'pneumoniamnist'" in msg
    assert all(name in msg for name in dataset_names())


def test_unsupported_size_lists_supported_sizes(forbid_download: None, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"not available at size 32.*28, 64, 128, 224"):
        load_dataset("pneumoniamnist", size=32, data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"digits is not available at size 64.*Supported sizes: 28"):
        load_dataset("digits", size=64)
    with pytest.raises(ValueError, match="Valid splits: train, val, test"):
        load_dataset("digits", split="training")


def test_multilabel_chestmnist_is_refused_clearly(forbid_download: None, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"multi-label.*single-label tasks only.*pneumoniamnist.*load_raw"):
        load_dataset("chestmnist", data_dir=tmp_path)


def test_load_raw_reads_multilabel_arrays(tiny_rgb_npz, tmp_path: Path) -> None:
    path = tmp_path / "chestmnist.npz"
    rng = np.random.default_rng(0)
    arrays = {}
    for s, n in (("train", 6), ("val", 2), ("test", 3)):
        arrays[f"{s}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{s}_labels"] = rng.integers(0, 2, (n, 14), dtype=np.uint8)
    np.savez(path, **arrays)
    images, labels = load_raw("chestmnist", "train", data_dir=tmp_path, download=False)
    assert images.shape == (6, 28, 28) and labels.shape == (6, 14)


# --------------------------------------------------------------------------------------------
# Official files (read-only shared folder)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_split_sizes_and_test_balance(name: str, shared_data_dir: Path, clean_env: Path) -> None:
    sizes, test_counts, floor = OFFICIAL[name]
    before = _snapshot(shared_data_dir)
    loaded = {s: load_dataset(name, s, data_dir=shared_data_dir, progress=False) for s in ("train", "val", "test")}
    assert tuple(len(loaded[s]) for s in ("train", "val", "test")) == sizes
    test = loaded["test"]
    assert test.images.dtype == np.uint8 and test.images.shape[1:] == (28, 28)
    assert test.labels.dtype == np.int64 and test.labels.shape == (sizes[2],)
    assert (test.n_channels, test.n_classes, test.size) == (1, 2, 28)
    assert test.source == str(shared_data_dir / f"{name}.npz")
    s = summarize(test)
    assert s["counts"] == test_counts and s["majority_floor"] == pytest.approx(floor, abs=5e-4)
    assert _snapshot(shared_data_dir) == before  # MD5 verified, but no stamp written into a read-only folder


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_files_via_env_var(name: str, shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAE_DATA_DIR", str(shared_data_dir))
    data = load_dataset(get_info(name).display_name, "test", download=False)  # e.g. "PneumoniaMNIST"
    assert len(data) == OFFICIAL[name][0][2]
    assert class_balance(name)["test"]["counts"] == OFFICIAL[name][1]


def test_download_true_verifies_existing_official_file_without_downloading(
    shared_data_dir: Path, forbid_download: None, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed = []
    real = checksums_mod.md5sum
    monkeypatch.setattr(checksums_mod, "md5sum", lambda p: hashed.append(p) or real(p))
    load_dataset("breastmnist", "val", data_dir=shared_data_dir, download=True)
    assert hashed == [shared_data_dir / "breastmnist.npz"]
    load_dataset("breastmnist", "test", data_dir=shared_data_dir, download=True)
    assert len(hashed) == 1  # remembered in the toolkit's cache (clean_env's), not beside the data


def test_list_datasets_and_table(shared_data_dir: Path) -> None:
    rows = {r["name"]: r for r in list_datasets(shared_data_dir)}
    assert set(rows) == set(dataset_names())
    assert rows["pneumoniamnist"]["local_sizes"] == [28] and rows["pneumoniamnist"]["available_28"]
    assert rows["bloodmnist"]["local_sizes"] == [] and rows["bloodmnist"]["channels"] == 3
    assert rows["digits"]["bundled"] and rows["digits"]["available_28"]
    assert not rows["chestmnist"]["supported"]
    assert (rows["breastmnist"]["train"], rows["breastmnist"]["val"], rows["breastmnist"]["test"]) == (546, 78, 156)
    table = format_dataset_table(list(rows.values()))
    assert "pneumoniamnist" in table and "4,708" in table and str(shared_data_dir) in table and "bundled" in table


# --------------------------------------------------------------------------------------------
# Data folder resolution
# --------------------------------------------------------------------------------------------
def test_resolve_data_dir_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAE_DATA_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert resolve_data_dir() == Path.home() / ".cache" / "cae_lib" / "medmnist"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir() == tmp_path / "xdg" / "cae_lib" / "medmnist"
    monkeypatch.setenv("CAE_DATA_DIR", "")  # empty (e.g. from the Makefile) counts as unset
    assert resolve_data_dir() == tmp_path / "xdg" / "cae_lib" / "medmnist"
    monkeypatch.setenv("CAE_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert not (tmp_path / "env").exists() and not (tmp_path / "xdg").exists()  # nothing is created


def test_import_has_no_side_effects(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = "import sys, cae_lib.data; print('medmnist' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# Missing, offline, corrupted files
# --------------------------------------------------------------------------------------------
def test_missing_file_offline_names_url_md5_folder(tmp_path: Path) -> None:
    info = get_info("dermamnist")
    with pytest.raises(DatasetUnavailableError) as exc:
        load_dataset("DermaMNIST", data_dir=tmp_path, download=False)
    msg = str(exc.value)
    for part in (info.url_for(28), info.md5_for(28), str(tmp_path / "dermamnist.npz"), "CAE_DATA_DIR", 'fallback="digits"'):
        assert part in msg
    assert list(tmp_path.iterdir()) == []


def test_fallback_to_digits_warns_and_sets_notice(tmp_path: Path) -> None:
    with pytest.warns(DatasetFallbackWarning, match="DermaMNIST is unavailable.*digits"):
        data = load_dataset("dermamnist", "test", data_dir=tmp_path, download=False, fallback="digits")
    assert data.name == "digits" and data.n_classes == 10 and len(data) == 359
    assert data.notice and "NOT DermaMNIST" in data.notice and "fallback for dermamnist" in data.source
    with pytest.raises(DatasetUnavailableError, match="only at 28 px"):
        load_dataset("dermamnist", size=64, data_dir=tmp_path, download=False, fallback="digits")
    with pytest.raises(ValueError, match="needs no download"):
        load_dataset("dermamnist", data_dir=tmp_path, download=False, fallback="pathmnist")


def test_no_fallback_when_file_is_there(tmp_path: Path, tiny_rgb_npz) -> None:
    tiny_rgb_npz(tmp_path / "bloodmnist.npz", n_classes=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_dataset("bloodmnist", data_dir=tmp_path, download=False, fallback="digits")
    assert data.name == "bloodmnist" and data.notice is None


def test_synthetic_registry_file_is_trusted_with_download_false(tmp_path: Path, tiny_rgb_npz, forbid_download: None) -> None:
    tiny_rgb_npz(tmp_path / "bloodmnist.npz", n=(16, 8, 12), n_classes=8)
    data = load_dataset("BloodMNIST", "val", data_dir=tmp_path, download=False)
    assert len(data) == 8 and data.n_channels == 3 and data.images.shape == (8, 28, 28, 3)
    assert data.class_names == get_info("bloodmnist").class_names and data.task == "multi-class"
    assert data.to_tensor().shape == (8, 3, 28, 28)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bloodmnist.npz"]  # nothing written


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "missing_keys", "bad_labels"])
def test_corrupted_or_truncated_npz_gives_clear_error(damage: str, tmp_path: Path, tiny_rgb_npz) -> None:
    path = tmp_path / "bloodmnist.npz"
    tiny_rgb_npz(path, n_classes=8)
    raw = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, len(raw), dtype=np.uint8).tobytes())
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "missing_keys":
        np.savez(path, train_images=np.zeros((2, 28, 28, 3), np.uint8), train_labels=np.zeros((2, 1), np.uint8))
    elif damage == "bad_labels":
        tiny_rgb_npz(path, n_classes=20)  # labels up to 19, BloodMNIST has 8 classes
    with pytest.raises(CorruptFileError) as exc:
        load_dataset("bloodmnist", "train", data_dir=tmp_path, download=False)
    msg = str(exc.value)
    assert str(path) in msg and ("delete" in msg.lower() or "Delete" in msg)


def test_corrupted_file_falls_back_when_asked(tmp_path: Path) -> None:
    (tmp_path / "bloodmnist.npz").write_bytes(b"not a zip file" * 100)
    with pytest.warns(DatasetFallbackWarning):
        data = load_dataset("bloodmnist", data_dir=tmp_path, download=False, fallback="digits")
    assert data.name == "digits"


def test_corrupt_custom_npz(tmp_path: Path) -> None:
    path = tmp_path / "mine.npz"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 300)
    with pytest.raises(CorruptFileError, match="mine.npz.*delete it"):
        load_dataset(path)


# --------------------------------------------------------------------------------------------
# Your own data: npz in MedMNIST layout
# --------------------------------------------------------------------------------------------
def test_synthetic_rgb_npz_loads_with_three_channels(tiny_rgb_npz) -> None:
    path = tiny_rgb_npz()
    data = load_dataset(str(path), "train")
    assert isinstance(data, ImageData) and len(data) == 30
    assert data.images.dtype == np.uint8 and data.images.shape == (30, 28, 28, 3)
    assert data.labels.dtype == np.int64 and data.labels.shape == (30,)
    assert (data.n_channels, data.n_classes, data.size, data.name) == (3, 4, 28, "tiny_rgb")
    x = data.to_tensor([0, 5, 7])
    assert x.shape == (3, 3, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    # channel c of the tensor is channel c of the HWC image
    assert torch.equal((x[1, 2] * 255).round().to(torch.uint8), torch.from_numpy(data.images[5, :, :, 2]))
    assert data.to_tensor().shape == (30, 3, 28, 28) and data.to_tensor(slice(2, 4)).shape == (2, 3, 28, 28)
    sub = data.subset(np.array([1, 2, 3]))
    assert len(sub) == 3 and sub.n_channels == 3 and np.array_equal(sub.labels, data.labels[1:4])
    assert "images" not in repr(data) and "n=30" in repr(data)


def test_labels_of_shape_n_and_grey_npz(tiny_rgb_npz, tmp_path: Path) -> None:
    path = tiny_rgb_npz(tmp_path / "grey.npz", channels=1, labels_2d=False, n_classes=3)
    data = load_dataset(path, "test")
    assert data.images.shape == (20, 28, 28) and data.n_channels == 1 and data.n_classes == 3
    assert data.to_tensor(0).shape == (1, 1, 28, 28)


def test_custom_npz_is_resized_to_size(tiny_rgb_npz) -> None:
    data = load_dataset(tiny_rgb_npz(size=40), "val", size=28)
    assert data.images.shape == (10, 28, 28, 3)


def test_save_npz_roundtrip_from_decoder_output(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, 3, 28, 28, generator=g)  # what a decoder returns
    y = torch.arange(12) % 3
    path = save_npz(tmp_path / "out" / "samples.npz", {"train": (x, y), "test": (x[:4], y[:4])},
                    class_names=["a", "b", "c"], metadata={"seed": 0})
    assert sorted(p.name for p in path.parent.iterdir()) == ["samples.npz"]  # no temp file left
    data = load_dataset(path, "train")
    assert data.class_names == ("a", "b", "c") and data.n_channels == 3
    assert torch.allclose(data.to_tensor(), x, atol=0.5 / 255 + 1e-6)
    assert np.array_equal(data.labels, y.numpy())
    with np.load(path) as npz:  # MedMNIST layout: uint8 images (N, H, W, C), labels (N, 1)
        assert npz["train_images"].dtype == np.uint8 and npz["train_labels"].shape == (12, 1)
        assert json.loads(str(npz["metadata_json"])) == {"seed": 0}
    with pytest.raises(ValueError, match="no 'val' split"):
        load_dataset(path, "val")
    # an ImageData saves too, and grey stays grey
    digits = load_dataset("digits", "test")
    p2 = save_npz(tmp_path / "digits.npz", {"test": digits}, class_names=digits.class_names)
    back = load_dataset(p2, "test")
    assert np.array_equal(back.images, digits.images) and back.n_channels == 1


def test_save_npz_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="channels-first"):
        save_npz(tmp_path / "a.npz", {"train": (np.zeros((2, 3, 28, 28), np.uint8), [0, 1])})
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        save_npz(tmp_path / "a.npz", {"train": (torch.full((2, 1, 8, 8), 2.0), [0, 1])})
    with pytest.raises(ValueError, match="unknown split"):
        save_npz(tmp_path / "a.npz", {"training": (np.zeros((2, 8, 8), np.uint8), [0, 1])})
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        save_npz(tmp_path / "a.npz", {"train": (np.zeros((2, 8, 8), np.uint8), [0, 1, 1])})
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# Your own data: a folder with one sub-folder per class
# --------------------------------------------------------------------------------------------
def _write_image_folder(root: Path, counts: dict[str, int], rgb: bool, size: tuple[int, int] = (40, 32)) -> Path:
    from PIL import Image

    rng = np.random.default_rng(1)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            shape = (size[1], size[0], 3) if rgb else (size[1], size[0])
            arr = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"img{i:03d}.{'png' if i % 2 else 'jpg'}")
    return root


def test_folder_dataset_grey(tmp_path: Path) -> None:
    root = _write_image_folder(tmp_path / "xray", {"normal": 20, "sick": 10}, rgb=False)
    (root / "notes.txt").write_text("ignored")
    splits = {s: load_dataset(root, s) for s in ("train", "val", "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [21, 3, 6]  # 70/10/20 per class
    train = splits["train"]
    assert train.images.shape[1:] == (28, 28) and train.n_channels == 1
    assert train.class_names == ("normal", "sick") and train.task == "binary-class" and train.name == "xray"
    assert np.bincount(splits["test"].labels).tolist() == [4, 2]  # stratified
    again = load_dataset(str(root), "train")
    assert np.array_equal(again.images, train.images)  # deterministic
    assert load_dataset(root, "test", size=16).images.shape == (6, 16, 16)


def test_folder_dataset_rgb_and_class_names_json(tmp_path: Path) -> None:
    root = _write_image_folder(tmp_path / "derm", {"a": 5, "b": 5, "c": 5}, rgb=True)
    (root / "class_names.json").write_text(json.dumps({"a": "nevus", "c": "melanoma"}))
    data = load_dataset(root, "train", size=32)
    assert data.images.shape[1:] == (32, 32, 3) and data.to_tensor([0]).shape == (1, 3, 32, 32)
    assert data.class_names == ("nevus", "b", "melanoma")


def test_empty_or_unreadable_folder_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no class sub-folders.*It is empty"):
        load_dataset(empty)
    flat = _write_image_folder(tmp_path / "flat", {"x": 2}, rgb=False) / "x"
    with pytest.raises(ValueError, match="holds 2 images directly"):
        load_dataset(flat)
    root = _write_image_folder(tmp_path / "two", {"a": 3, "b": 3}, rgb=False)
    (root / "c").mkdir()
    with pytest.raises(ValueError, match=r"class folder .*c contains no images"):
        load_dataset(root)
    (root / "c" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(CorruptFileError, match=r"cannot read the image .*broken.png"):
        load_dataset(root)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(tmp_path / "nope")


# --------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------
def test_digits_offline(forbid_download: None, clean_env: Path) -> None:
    parts = {s: load_dataset("digits", s, data_dir="/nonexistent") for s in ("train", "val", "test")}
    train = parts["train"]
    assert train.images.shape[1:] == (28, 28) and train.images.dtype == np.uint8
    assert train.n_classes == 10 and train.n_channels == 1 and train.source == "sklearn digits"
    assert train.images.max() == 255 and train.images.min() == 0
    assert set(np.unique(train.labels)) == set(range(10))
    assert not clean_env.exists()


def test_stratified_split_is_a_deterministic_partition() -> None:
    labels = np.repeat(np.arange(3), [50, 30, 7])
    a, b = stratified_split(labels, seed=0), stratified_split(labels, seed=0)
    assert all(np.array_equal(a[s], b[s]) for s in a)
    allidx = np.concatenate(list(a.values()))
    assert sorted(allidx.tolist()) == list(range(len(labels)))
    assert np.bincount(labels[a["test"]]).tolist() == [10, 6, 1]
    assert not np.array_equal(stratified_split(labels, seed=1)["test"], a["test"])


# --------------------------------------------------------------------------------------------
# Loader
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3])
def test_image_batches_of_loaded_data(channels: int, tiny_rgb_npz) -> None:
    data = load_dataset(tiny_rgb_npz(n=(50, 4, 4), channels=channels), "train")
    source = ImageBatches.from_data(data)
    chunks = epoch_batches(len(source), 16, seed=3, epoch=0)
    batches = [source.get_batch(idx) for idx in chunks]
    assert [len(y) for _, y in batches] == [16, 16, 16, 2]
    x, y = batches[0]
    assert x.shape == (16, channels, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.long
    rows = torch.cat(chunks)
    assert sorted(rows.tolist()) == list(range(50))  # every row once per epoch
    assert torch.equal(x, data.to_tensor(rows[:16])) and torch.equal(y, torch.from_numpy(data.labels[rows[:16].numpy()]))


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------
def test_summarize_against_numpy(tiny_rgb_npz) -> None:
    data = load_dataset(tiny_rgb_npz(n=(30, 4, 4), n_classes=4), "train")
    s = summarize(data)
    assert s["counts"] == [8, 8, 7, 7] and s["n"] == 30
    assert s["majority_floor"] == pytest.approx(8 / 30) and s["majority_class"] == 0
    x = data.images.astype(np.float64) / 255.0
    assert np.allclose(s["pixel_mean"], x.mean(axis=(0, 1, 2)))
    assert np.allclose(s["pixel_std"], x.std(axis=(0, 1, 2)))


def test_class_balance_of_own_file_and_digits(tiny_rgb_npz) -> None:
    bal = class_balance(tiny_rgb_npz(n=(12, 4, 8), n_classes=4))
    assert bal["train"]["counts"] == [3, 3, 3, 3] and bal["test"]["majority_floor"] == 0.25
    digits = class_balance("digits")
    assert sum(digits["test"]["counts"]) == 359 and digits["test"]["class_names"][3] == "3"
    loaded = {split: load_dataset("digits", split=split) for split in ("train", "val", "test")}
    assert class_balance(loaded) == digits  # splits already loaded give the same table, without reading again


def test_datasetinfo_can_point_at_a_mirror() -> None:
    info = get_info("bloodmnist")
    mirror = dataclasses.replace(info, urls={28: "http://mirror/bloodmnist.npz"}, md5s={28: "0" * 32}, sizes=(28,))
    assert isinstance(mirror, DatasetInfo) and mirror.url_for(28) == "http://mirror/bloodmnist.npz"
    assert info.url_for(28).startswith("https://zenodo.org/")


def test_checksum_error_is_unavailable() -> None:
    assert issubclass(ChecksumError, DatasetUnavailableError) and issubclass(CorruptFileError, DatasetUnavailableError)


def test_sample_is_a_seeded_ordered_subset():
    data = load_dataset("digits", split="test")
    a, b, c = data.sample(40, seed=1), data.sample(40, seed=1), data.sample(40, seed=2)
    assert len(a) == 40 and np.array_equal(a.images, b.images) and not np.array_equal(a.images, c.images)
    assert data.sample(None) is data and data.sample(len(data) + 5) is data
    rows = [int(np.flatnonzero((data.images == img).all(axis=(1, 2)))[0]) for img in a.images[:10]]
    assert rows == sorted(rows)  # original order kept
