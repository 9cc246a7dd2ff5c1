"""Large splits are memory-mapped: a split bigger than the budget never sits in memory whole."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cae_lib.data.mmap import memory_budget_mb, npz_member_nbytes, open_npz_member, should_mmap

N, SIZE = 1600, 224  # 1600 x 224 x 224 x 3 uint8 = 241 MB of train images


def write_big_npz(path: Path, tmp: Path) -> int:
    """A MedMNIST-layout .npz whose train split is large, written chunk by chunk (never whole in memory)."""
    images = np.lib.format.open_memmap(tmp / "train_images.npy", mode="w+", dtype=np.uint8, shape=(N, SIZE, SIZE, 3))
    for start in range(0, N, 100):
        images[start:start + 100] = (np.arange(start, start + 100) % 251).astype(np.uint8)[:, None, None, None]
    images.flush()
    del images
    small = {
        "train_labels": (np.arange(N) % 2).astype(np.uint8)[:, None],
        "val_images": np.zeros((4, SIZE, SIZE, 3), np.uint8), "val_labels": np.zeros((4, 1), np.uint8),
        "test_images": np.zeros((4, SIZE, SIZE, 3), np.uint8), "test_labels": np.zeros((4, 1), np.uint8),
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.write(tmp / "train_images.npy", "train_images.npy")
        for key, arr in small.items():
            np.save(tmp / f"{key}.npy", arr)
            z.write(tmp / f"{key}.npy", f"{key}.npy")
    (tmp / "train_images.npy").unlink()
    return N * SIZE * SIZE * 3


CHILD = r"""
import json, resource, sys
from pathlib import Path
import numpy as np, torch
from cae_lib.batches import ImageBatches
from cae_lib.data.loading import _read_official_split
from cae_lib.data.registry import get_info
def anon_mb():
    # resident memory that only this process holds (RssAnon): mapped file pages are left out, the
    # kernel can drop them at any time; /proc is Linux-only, so fall back to the peak RSS elsewhere
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
before = peak = anon_mb()
images, labels = _read_official_split(Path(sys.argv[1]), get_info("pathmnist"), "train")
source = ImageBatches(images, labels)
total = 0.0
for start in range(0, len(source), 16):  # one pass over every row, a batch of 16 (9.6 MB as floats) at a time
    x, y = source.get_batch(torch.arange(start, min(start + 16, len(source))))
    total += float(x[:, 0, 0, 0].sum())
    peak = max(peak, anon_mb())
print(json.dumps({"before_mb": before, "peak_mb": peak, "mapped": isinstance(images.base, np.memmap) or isinstance(images, np.memmap),
                  "total": total, "n": len(source)}))
"""


def test_a_split_over_the_budget_is_mapped_and_peak_memory_stays_low(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "data").mkdir()
    npz = tmp_path / "data" / "pathmnist_224.npz"
    nbytes = write_big_npz(npz, tmp_path)
    assert npz_member_nbytes(npz, "train_images") == nbytes
    env = {"CAE_MEMORY_BUDGET_MB": "50", "XDG_CACHE_HOME": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
           "PATH": "/usr/bin:/bin",
           # glibc raises its mmap threshold after the first large free, then keeps freed batch buffers
           # on its heap (~70 MB here, whatever the file size); a fixed threshold returns them, so
           # what remains is what the data path itself holds
           "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(npz)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["n"] == N and report["mapped"]
    expected = sum((i % 251) / 255.0 for i in range(N))
    assert report["total"] == pytest.approx(expected, rel=1e-6)  # every row read back right
    grew_mb = report["peak_mb"] - report["before_mb"]  # private (anonymous) memory: what cannot be paged out
    assert grew_mb < nbytes / 1e6 / 10, f"reading a {nbytes / 1e6:.0f} MB split raised memory by {grew_mb:.0f} MB"
    unpacked = list((tmp_path / "cache" / "cae_lib" / "mmap").glob("*/train_images.npy"))
    assert len(unpacked) == 1 and not list(npz.parent.glob("*.npy"))  # unpacked into the cache, not beside the data


def test_small_splits_stay_in_memory_and_the_budget_is_configurable(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "small.npz"
    np.savez_compressed(path, train_images=np.ones((10, 28, 28), np.uint8))
    monkeypatch.delenv("CAE_MEMORY_BUDGET_MB", raising=False)
    assert memory_budget_mb() == 512 and not should_mmap(path, "train_images")
    assert should_mmap(path, "train_images", budget_mb=0.001)  # 7,840 bytes > 1,000
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    mapped = open_npz_member(path, "train_images")  # compressed members stream out too
    assert isinstance(mapped, np.memmap) and mapped.shape == (10, 28, 28) and mapped.sum() == 7840
    monkeypatch.setenv("CAE_MEMORY_BUDGET_MB", "lots")
    with pytest.raises(ValueError, match="CAE_MEMORY_BUDGET_MB"):
        memory_budget_mb()


def test_a_broken_file_is_left_to_the_reader_that_explains_it(tmp_path: Path) -> None:
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not a zip file at all" * 10)
    assert not should_mmap(bad, "train_images", budget_mb=0)
