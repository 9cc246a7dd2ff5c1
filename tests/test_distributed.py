"""Several processes (gloo on the CPU, 2 ranks) give what one process gives.

- NT-Xent with gathered negatives equals the single-process loss on the whole batch, in value
  and in gradients, and both equal the double-loop oracle of SimCLR's equation.
- DDP training with SyncBatchNorm and the same global batch gives the same weights as one process.
- Stopping after an epoch and resuming from the checkpoint gives the same weights as not stopping.
- A crash on one rank ends the whole run promptly, with that rank's error.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

import ddp_workers
from cae_lib.checkpoint import load_checkpoint
from cae_lib.distributed import SyncBatchNorm, convert_sync_batchnorm, shard
from cae_lib.losses import NTXentLoss
from test_losses import ntxent_double_loop

WORLD_SIZE = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(worker, tmp_path: Path) -> None:
    mp.spawn(worker, args=(WORLD_SIZE, free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=True)


def test_gathered_ntxent_equals_single_process_and_the_oracle(tmp_path: Path) -> None:
    spawn(ddp_workers.ntxent_worker, tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD_SIZE)]
    z1, z2 = ddp_workers.toy_projections()
    a, b = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    single = NTXentLoss(0.3)(a, b)
    single.backward()
    # value: each rank returns the mean over its own views; their mean is the global loss
    assert torch.stack([r["loss"] for r in ranks]).mean().item() == pytest.approx(single.item(), rel=1e-12)
    assert single.item() == pytest.approx(ntxent_double_loop(z1, z2, 0.3).item(), rel=1e-9)
    # gradients: rank r's input gradient sums every rank's loss; DDP divides by the world size
    n = len(z1) // WORLD_SIZE
    for r, out in enumerate(ranks):
        torch.testing.assert_close(out["ga"] / WORLD_SIZE, a.grad[r * n:(r + 1) * n], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(out["gb"] / WORLD_SIZE, b.grad[r * n:(r + 1) * n], rtol=1e-10, atol=1e-12)


#: fp64 weights after 12 Adam steps; the runs differ only in the order of floating-point sums.
WEIGHT_TOLERANCE = dict(rtol=1e-6, atol=1e-7)


def test_ddp_training_matches_one_process_and_resumes_exactly(tmp_path: Path) -> None:
    spawn(ddp_workers.training_worker, tmp_path)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=False)
    single_trainer = ddp_workers.train(3)
    single = single_trainer.model.state_dict()
    assert ddp["world_size"] == WORLD_SIZE
    assert len(ddp["history"]) == 3
    for a, b in zip(ddp["history"], single_trainer.state.history):  # logs too: averaged over ranks, top-1 over the global batch
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6) and a["top1"] == pytest.approx(b["top1"], abs=1e-9)
    for key, value in single.items():
        torch.testing.assert_close(ddp["full"][key].float(), value.float(), **WEIGHT_TOLERANCE, msg=key)
        assert torch.equal(ddp["resumed"][key], ddp["full"][key]), f"resume changed {key}"


def test_crash_on_one_rank_stops_every_rank_promptly(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", str(free_port()),
           str(Path(ddp_workers.__file__)), "crash"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    elapsed = time.perf_counter() - start
    assert proc.returncode != 0
    assert "simulated failure on rank 1" in proc.stdout + proc.stderr
    assert elapsed < 60, f"the run took {elapsed:.0f} s to stop"


def test_shard_gives_disjoint_equal_slices() -> None:
    idx = torch.arange(11)
    parts = [shard(idx, r, 3) for r in range(3)]
    assert [p.tolist() for p in parts] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    with pytest.raises(ValueError, match="batch_size"):
        shard(torch.arange(2), 0, 3)


def test_sync_batchnorm_is_plain_batchnorm_in_one_process() -> None:
    bn = torch.nn.BatchNorm2d(3)
    x = torch.randn(6, 3, 4, 4)
    expected = bn(x)
    model = convert_sync_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(3)))
    assert isinstance(model[0], SyncBatchNorm)
    torch.testing.assert_close(model(x), expected)
    torch.testing.assert_close(model[0].running_var, bn.running_var)


def test_torchrun_trains_through_the_cli_and_records_the_world_size(tmp_path: Path) -> None:
    """`torchrun --nproc_per_node=2 -m cae_lib train ...`: one checkpoint, written by rank 0, saying world_size 2."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", str(free_port()),
           "-m", "cae_lib", "train", "--dataset", "digits", "--epochs", "1", "--batch-size", "128",
           "--out", str(tmp_path / "run"), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained CAE on digits") == 1  # rank 0 alone reports
    config = json.loads((tmp_path / "run" / "model.json").read_text())["config"]
    assert config["train"]["world_size"] == 2
    model, cfg, _ = load_checkpoint(tmp_path / "run" / "model.pt")
    assert cfg.train.world_size == 2 and not any(isinstance(m, SyncBatchNorm) for m in model.modules())
