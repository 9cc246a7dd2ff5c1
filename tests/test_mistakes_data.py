"""The data mistakes of issue 24: broken or odd .npz files and image folders, as a new user makes them.

Each case goes through the Python API (``load_dataset``) and, where a user meets it, the command
line. A mistake must give one ``error:`` line naming the problem and the fix, before any work (no
``model.pt`` written, the data untouched); an odd but valid input must give the right images.
The class of each case before the fix is in the test's docstring or its ``pytest.param`` id.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pytest
from PIL import Image

from cae_lib.data import CorruptFileError, load_dataset
from cae_lib.data.layout import resize_images
from cae_lib.data.provenance import fingerprint
from cli_helpers import SMALL, digits_split, make_folder, no_medmnist_files, run_cli


@pytest.fixture(autouse=True)
def no_official_data(tmp_path, monkeypatch):
    no_medmnist_files(tmp_path, monkeypatch)


# --------------------------------------------------------------------------------------------
# .npz files
# --------------------------------------------------------------------------------------------
def _arrays(n: tuple[int, int, int] = (60, 20, 30)) -> dict[str, np.ndarray]:
    """A valid MedMNIST-layout dict of grey 28 x 28 digits (10 classes, every class in every split)."""
    out = {}
    for split, k in zip(("train", "val", "test"), n):
        x, y = digits_split(split, k)
        out[f"{split}_images"], out[f"{split}_labels"] = x, y[:, None]
    return out


def _write(path: Path, arrays: dict[str, np.ndarray], pickle: bool = False) -> Path:
    with open(path, "wb") as f:
        (np.savez if pickle else np.savez_compressed)(f, **arrays)
    return path


def _edit(**changes: Callable[[np.ndarray], np.ndarray | None]) -> Callable[[Path], Path]:
    """A builder: the valid arrays with ``key=f(array)`` applied (``None`` removes the key)."""

    def build(path: Path) -> Path:
        arrays = _arrays()
        for key, f in changes.items():
            value = f(arrays[key])
            if value is None:
                del arrays[key]
            else:
                arrays[key] = value
        return _write(path, arrays)

    return build


def _truncated(path: Path) -> Path:
    raw = _write(path, _arrays()).read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _renamed(path: Path) -> Path:
    a = _arrays()
    return _write(path, {f"{'x' if k.endswith('images') else 'y'}_{k.split('_')[0]}": v for k, v in a.items()})


def _with_nan(x: np.ndarray) -> np.ndarray:
    f = x.astype(np.float32) / 255
    f[3, 5, 5] = np.nan
    return f


def _gaps(y: np.ndarray) -> np.ndarray:
    return np.array([0, 2, 7])[y % 3]


def _one_class(path: Path) -> Path:
    a = _arrays()
    for s in ("train", "val", "test"):
        a[f"{s}_labels"][:] = 0
    return _write(path, a)


def _npy(path: Path) -> Path:
    with open(path, "wb") as f:
        np.save(f, _arrays()["train_images"])
    return path


def _object_labels(path: Path) -> Path:
    a = _arrays()
    a["train_labels"] = np.array([int(v) for v in a["train_labels"][:, 0]], dtype=object)
    return _write(path, a, pickle=True)


def _text(path: Path) -> Path:
    path.write_text("label,pixel0,pixel1\n0,12,200\n")
    return path


def _png(path: Path) -> Path:
    Image.new("L", (28, 28)).save(path, format="PNG")
    return path


def _short_names(path: Path) -> Path:
    return _write(path, {**_arrays(), "class_names": np.array(["cat", "dog"])})


# id (class before the fix) -> (builder, words the message must hold, the split the API loads)
BAD_NPZ = [
    pytest.param(_truncated, ["truncated or corrupted", "delete it"], "train", id="truncated-clear"),
    pytest.param(_edit(val_images=lambda x: None, val_labels=lambda y: None), ["no 'val' split", "stratified_split"], "val", id="missing-val-unclear"),
    pytest.param(_edit(test_labels=lambda y: None), ["has test_images but no test_labels", "Add test_labels"], "train", id="missing-test-labels-lost-work"),
    pytest.param(_renamed, ["x_train -> train_images", "y_test -> test_labels", "np.savez"], "train", id="renamed-keys-unclear"),
    pytest.param(_edit(train_images=_with_nan), ["NaN", "image 3", "np.nan_to_num"], "train", id="float-nan-unclear"),
    pytest.param(_edit(train_images=lambda x: x.astype(np.float32) * 1.5), ["[0, 382.5]", "Rescale them"], "train", id="float-above-255-unclear"),
    pytest.param(_edit(**{f"{s}_images": (lambda x: x.astype(np.float32)) for s in ("train", "val", "test")}),
                 ["[0, 255]", "0 .. 255 scale", "divide them by 255"], "train", id="float-0-255-unclear"),
    pytest.param(_edit(test_images=_with_nan), ["[test_images]", "NaN"], "train", id="bad-test-split-lost-work"),
    pytest.param(_one_class, ["only one class", "at least 2", "labelled 1"], "train", id="one-class-unclear-after-training"),
    pytest.param(_edit(train_labels=lambda y: y.astype(np.int64) - 1), ["negative", "smallest is -1", "labels - labels.min()"], "train", id="negative-labels-unclear"),
    pytest.param(_edit(**{f"{s}_labels": _gaps for s in ("train", "val", "test")}),
                 ["{0, 2, 7}", "{1, 3, 4, 5, 6} have no images", "8 classes where there are 3", "np.unique"], "train", id="label-gaps-silent"),
    pytest.param(_edit(val_images=lambda x: x[:0], val_labels=lambda y: y[:0]), ["val split is empty", "stratified_split"], "train", id="empty-split-unclear"),
    pytest.param(_edit(train_labels=lambda y: y[:50]), ["60 images but train_labels has 50 labels", "exactly one label"], "train", id="length-mismatch-unclear"),
    pytest.param(_text, ["not an .npz file", "text file", "'label,pixel0,pixel1'", "np.savez"], "train", id="text-file-unclear"),
    pytest.param(_npy, ["not an .npz file", ".npy, written by np.save", "np.savez"], "train", id="npy-file-traceback"),
    pytest.param(_png, ["not an .npz file", "PNG image"], "train", id="png-file-unclear"),
    pytest.param(_object_labels, ["train_labels holds Python objects", "never unpickles", "np.int64"], "train", id="object-labels-unclear"),
    pytest.param(_edit(**{f"{s}_images": (lambda x: x.astype(np.uint16) * 16) for s in ("train", "val", "test")}),
                 ["0 .. 255", "uint16 in [0, 4080]", "Rescale them to 8 bits"], "train", id="uint16-images-unclear"),
    pytest.param(_short_names, ["labels go up to 9 but only 2 class names", "one name per class"], "train", id="short-class-names-unclear"),
]


@pytest.mark.parametrize("build, words, split", BAD_NPZ)
def test_a_broken_npz_is_one_clear_error_before_any_work(build, words, split, tmp_path, capsys):
    path = build(tmp_path / "mine.npz")
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    with pytest.raises((ValueError, CorruptFileError)) as exc:
        load_dataset(path, split)
    for w in words:
        assert w in str(exc.value), str(exc.value)
    code, _, err = run_cli(capsys, "train", "--dataset", path, "--out", tmp_path / "run", *SMALL)
    assert code == 2 and err.startswith("error: ") and str(path) in err, err
    for w in words:
        assert w in err, err
    assert not (tmp_path / "run" / "model.pt").exists()  # nothing trained on bad data
    assert hashlib.md5(path.read_bytes()).hexdigest() == md5  # the data is never touched


def test_float_images_in_0_1_are_scaled_to_0_255(tmp_path):
    """Right result (before and after): floats are fractions of full brightness."""
    a = _arrays()
    raw = a["train_images"].copy()
    a["train_images"] = raw.astype(np.float32) / 255
    data = load_dataset(_write(tmp_path / "f.npz", a), "train")
    assert data.images.dtype == np.uint8 and np.array_equal(data.images, raw)


def test_splits_of_other_sizes_are_resized_to_one_size(tmp_path):
    """Right result (before and after): every split is resized to ``size``, as documented for your own data."""
    a = _arrays()
    a["val_images"] = resize_images(a["val_images"], 36)
    path = _write(tmp_path / "sizes.npz", a)
    val = load_dataset(path, "val")
    assert val.images.shape == (20, 28, 28) and load_dataset(path, "train").images.shape == (60, 28, 28)
    assert np.array_equal(val.images, resize_images(a["val_images"], 28))


def test_non_square_npz_images_are_centre_cropped_like_folder_images(tmp_path):
    """Silent wrong result before: 28 x 44 images were squashed to 28 x 28; now centre-cropped, as in folders."""
    a = _arrays()
    raw = a["train_images"].copy()
    for s in ("train", "val", "test"):
        a[f"{s}_images"] = np.pad(a[f"{s}_images"], ((0, 0), (0, 0), (8, 8)))
    data = load_dataset(_write(tmp_path / "wide.npz", a), "train")
    assert np.array_equal(data.images, raw)


def test_named_classes_may_be_missing_from_the_images(tmp_path):
    """Generated samples of one label (``sample --label 3 --npz``) name every class, so they still load."""
    x, _ = digits_split("test", 8)
    path = _write(tmp_path / "samples.npz", {"test_images": x, "test_labels": np.full((8, 1), 3, np.uint8),
                                             "class_names": np.array([str(i) for i in range(10)])})
    data = load_dataset(path, "test")
    assert data.n_classes == 10 and set(data.labels.tolist()) == {3}


def test_a_test_split_with_label_gaps_may_be_inspected_but_not_trained_on(tmp_path):
    """Only the train split (what training loads) is held to labels 0 .. K-1 without gaps."""
    path = _edit(**{f"{s}_labels": _gaps for s in ("train", "val", "test")})(tmp_path / "gaps.npz")
    assert load_dataset(path, "test").n_classes == 8
    with pytest.raises(ValueError, match="have no images"):
        load_dataset(path, "train")


# --------------------------------------------------------------------------------------------
# Image folders
# --------------------------------------------------------------------------------------------
def _clean(tmp_path: Path, name: str = "clean") -> Path:
    return make_folder(tmp_path / name, 8)


def _refused_everywhere(root: Path, words: Sequence[str], error: type[Exception], tmp_path: Path, capsys: Any) -> None:
    """``load_dataset(root)`` raises ``error`` and ``train`` exits 2, both with every one of ``words``."""
    with pytest.raises(error) as exc:
        load_dataset(root)
    for w in words:
        assert w in str(exc.value), str(exc.value)
    code, _, err = run_cli(capsys, "train", "--dataset", root, "--out", tmp_path / "run", *SMALL)
    assert code == 2 and all(w in err for w in words), err


def _same_data(a: Path, b: Path) -> None:
    for split in ("train", "test"):
        x, y = load_dataset(a, split), load_dataset(b, split)
        assert np.array_equal(x.images, y.images) and np.array_equal(x.labels, y.labels)


def test_a_corrupt_png_names_the_file(tmp_path, capsys):
    """Handled clearly (before and after)."""
    root = _clean(tmp_path)
    (root / "benign" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(CorruptFileError, match=r"cannot read the image .*bad.png .*Delete or replace it"):
        load_dataset(root)
    code, _, err = run_cli(capsys, "train", "--dataset", root, "--out", tmp_path / "run", *SMALL)
    assert code == 2 and "bad.png" in err and "Delete or replace it" in err


def test_non_image_and_hidden_files_are_ignored(tmp_path):
    """Right result (before and after): README.txt, .DS_Store, Thumbs.db, ._x.png, .ipynb_checkpoints, __MACOSX."""
    root = _clean(tmp_path, "messy")
    (root / "README.txt").write_text("my data")
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "__MACOSX").mkdir()
    (root / ".ipynb_checkpoints").mkdir()
    shutil.copy(root / "benign" / "0.png", root / ".ipynb_checkpoints" / "x.png")
    for junk in ("notes.txt", "Thumbs.db", ".DS_Store", "._0.png"):
        (root / "benign" / junk).write_bytes(b"\0\5\26\7 not an image")
    (root / "benign" / ".ipynb_checkpoints").mkdir()
    shutil.copy(root / "benign" / "0.png", root / "benign" / ".ipynb_checkpoints" / "0-checkpoint.png")
    clean = _clean(tmp_path)
    _same_data(root, clean)
    assert fingerprint(load_dataset(root)) == fingerprint(load_dataset(clean))


def test_mixed_sizes_and_modes_become_one_rgb_set(tmp_path):
    """Right result (before and after): L, RGB, RGBA, palette and LA images of any size load as RGB."""
    root = _clean(tmp_path)
    rgb = np.random.default_rng(0).integers(0, 255, (28, 28, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(root / "benign" / "a_rgb.png")
    Image.fromarray(rgb).convert("RGBA").save(root / "benign" / "b_rgba.png")
    Image.fromarray(rgb).convert("P").save(root / "malignant" / "a_pal.png")
    Image.fromarray(rgb[..., 0]).save(root / "malignant" / "b_l.png")
    Image.fromarray(rgb).resize((56, 70)).convert("LA").save(root / "malignant" / "c_la.png")
    from cae_lib.data.folder import load_folder

    images, labels, _ = load_folder(root, 28)
    assert images.shape == (21, 28, 28, 3) and labels.tolist() == [0] * 10 + [1] * 11
    # sorted file names: each class's 8 PNGs "0.png" .. "7.png" come first
    assert np.array_equal(images[8], rgb) and np.array_equal(images[9], rgb)  # the RGBA one loses only alpha
    assert np.array_equal(images[18], np.asarray(Image.fromarray(rgb).convert("P").convert("RGB")))
    assert np.array_equal(images[19], np.repeat(rgb[..., :1], 3, -1))  # grey is repeated into 3 channels


@pytest.mark.parametrize("layout, words", [
    pytest.param("nested", ["benign has images in sub-folders", "more/: 3 images", "Move them up into benign/"], id="nested-silent-loss"),
    pytest.param("splits", ["test has images in sub-folders", "benign/: 3 images", "test as the dataset"], id="split-folders-unclear"),
])
def test_images_in_sub_sub_folders_are_not_silently_left_out(layout, words, tmp_path, capsys):
    if layout == "nested":
        root = _clean(tmp_path)
        deeper = root / "benign" / "more" / "deeper"
        deeper.mkdir(parents=True)
        for i in range(3):
            shutil.copy(root / "benign" / "0.png", deeper / f"n{i}.png")
    else:
        root = tmp_path / "splits"
        make_folder(root / "train", 6)
        make_folder(root / "test", 3)
    _refused_everywhere(root, words, ValueError, tmp_path, capsys)


def test_spaces_and_non_ascii_names_train_evaluate_and_sample(tmp_path, capsys):
    """Right result (before and after), through every command."""
    root = make_folder(tmp_path / "my data ü", 8, ("bénin tumour", "恶性 肿瘤"))
    data = load_dataset(root)
    assert data.class_names == ("bénin tumour", "恶性 肿瘤") and data.name == "my data ü"
    run = tmp_path / "runs ü" / "a b"
    assert run_cli(capsys, "train", "--dataset", root, "--out", run, *SMALL)[0] == 0
    assert run_cli(capsys, "evaluate", "--checkpoint", run, "--json", tmp_path / "m é.json")[0] == 0
    assert run_cli(capsys, "sample", "--checkpoint", run, "--n", "4", "--out", tmp_path / "s ü.png")[0] == 0
    assert (tmp_path / "m é.json").is_file() and (tmp_path / "s ü.png").is_file()


def test_linked_images_and_class_folders_load_and_count_in_the_fingerprint(tmp_path):
    """Silent wrong result before: images in a linked class folder were left out of the fingerprint, so
    evaluate did not notice when they changed. They are loaded (before and after) and now fingerprinted."""
    root = _clean(tmp_path)
    elsewhere = make_folder(tmp_path / "elsewhere", 6, ("x", "y"))
    os.symlink(elsewhere / "x" / "0.png", root / "benign" / "linked.png")
    os.symlink(elsewhere / "y", root / "more_malignant")
    data = load_dataset(root, "train")
    assert data.class_names == ("benign", "malignant", "more_malignant")
    before = fingerprint(data)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(elsewhere / "y" / "3.png")
    assert fingerprint(load_dataset(root, "train")) != before


@pytest.mark.parametrize("kind, words", [
    pytest.param("broken", ["gone.png is a link to", "does not exist", "Remove the link"], id="broken-link-silent-loss"),
    pytest.param("file-loop", ["loop_a.png is a link to loop_b.png", "loop"], id="file-link-loop-silent-loss"),
    pytest.param("folder-loop", ["benign/up is a link to ..", "a folder that holds it"], id="folder-link-loop-ignored"),
    pytest.param("root-loop", ["self is a link to .", "contain itself"], id="root-link-loop-unclear"),
])
def test_broken_and_looping_links_are_named(kind, words, tmp_path, capsys):
    root = _clean(tmp_path)
    if kind == "broken":
        os.symlink(tmp_path / "nowhere.png", root / "benign" / "gone.png")
    elif kind == "file-loop":
        os.symlink("loop_b.png", root / "benign" / "loop_a.png")
        os.symlink("loop_a.png", root / "benign" / "loop_b.png")
    elif kind == "folder-loop":
        os.symlink("..", root / "benign" / "up")
    else:
        os.symlink(".", root / "self")
    _refused_everywhere(root, words, CorruptFileError, tmp_path, capsys)


def test_a_rotated_phone_photo_is_turned_upright(tmp_path):
    """Silent wrong result before: the EXIF orientation was ignored, so the image lay on its side."""
    root = _clean(tmp_path)
    a = np.zeros((28, 28), np.uint8)
    a[:6] = 255  # a bright band at the top, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(a).save(root / "benign" / "photo.jpg", exif=exif, quality=95)
    from cae_lib.data.folder import load_folder

    images, _, _ = load_folder(root, 28)
    shown = images[8].astype(float)  # benign's 8 PNGs come first, then photo.jpg
    assert shown[:, -6:].mean() > 200 and shown[:6, :20].mean() < 50  # the band is on the right, as displayed
