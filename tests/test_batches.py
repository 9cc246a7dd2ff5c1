"""The one batching path: uint8 -> float, the seeded permutation shared by trainer and loader."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from cae_lib.batches import ImageBatches, epoch_batches, epoch_generator, images_to_float

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("shape", [(5, 7, 6), (5, 7, 6, 3)])
def test_images_to_float_matches_numpy_oracle(shape: tuple[int, ...]) -> None:
    images = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    expected = images.astype(np.float64) / 255.0
    expected = expected[:, None] if images.ndim == 3 else expected.transpose(0, 3, 1, 2)
    x = images_to_float(images)
    assert x.dtype == torch.float32 and x.is_contiguous()
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-7)
    assert images_to_float(torch.from_numpy(images)).equal(x)


def test_images_to_float_keeps_floats_and_rejects_other_shapes() -> None:
    floats = np.random.default_rng(1).random((2, 4, 4)).astype(np.float32)
    assert np.array_equal(images_to_float(floats)[:, 0].numpy(), floats)
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(N, H, W, C\)"):
        images_to_float(np.zeros((4, 4), np.uint8))


def test_epoch_batches_is_the_seeded_permutation() -> None:
    expected = torch.randperm(10, generator=epoch_generator(3, 2, 0))
    chunks = epoch_batches(10, 4, seed=3, epoch=2)
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert torch.equal(torch.cat(chunks), expected)
    assert [len(c) for c in epoch_batches(10, 4, seed=3, epoch=2, min_batch=4)] == [4, 4]
    assert torch.equal(torch.cat(epoch_batches(10, 4, seed=None)), torch.arange(10))
    assert [len(c) for c in epoch_batches(3, 4, seed=0, min_batch=4)] == [3]  # a lone batch is kept
    with pytest.raises(ValueError, match="batch_size"):
        epoch_batches(10, 0)


def test_image_batches_reads_a_memory_map_without_copying_it(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(20, 6, 6, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    source = ImageBatches(mapped, np.arange(20) % 2)
    assert isinstance(source.images, np.memmap)
    x, y = source.get_batch(torch.tensor([3, 1]))
    assert x.shape == (2, 3, 6, 6) and y.tolist() == [1, 1]
    assert torch.equal(x, images_to_float(images[[3, 1]]))
    with pytest.raises(ValueError, match="labels"):
        ImageBatches(images, np.zeros(3))


def _divides_by_255(node: ast.AST) -> bool:
    """True for ``x / 255``, ``x / 255.0``, ``.div(255)`` and ``.div_(255.0)``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return isinstance(node.right, ast.Constant) and node.right.value == 255
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("div", "div_"):
        return bool(node.args) and isinstance(node.args[0], ast.Constant) and node.args[0].value == 255
    return False


#: Divisions by 255 that do not turn images into model input, and why.
NOT_MODEL_INPUT = {
    "cae_lib/data/summary.py": "a 256-entry lookup table for exact pixel statistics",
    "cae_lib/plots/images.py": "display scaling for imshow, in MedMNIST layout",
}


def test_only_the_batches_module_converts_uint8_to_float() -> None:
    places = [
        (str(path.relative_to(ROOT)), node.lineno)
        for path in sorted((ROOT / "cae_lib").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if _divides_by_255(node)
    ]
    converters = [f"{p}:{line}" for p, line in places if p not in NOT_MODEL_INPUT]
    assert converters and all(p.startswith("cae_lib/batches.py:") for p in converters), converters
