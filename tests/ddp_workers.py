"""Code that runs inside the ranks of the multi-process tests (tests/test_distributed.py).

Each worker joins a gloo process group on the CPU, does its part and writes what the parent test
compares into ``out_dir`` (rank 0, or every rank with its number in the file name).
"""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from cae_lib.config import AugmentConfig, CAEConfig, ModelConfig, TrainConfig
from cae_lib.batches import ImageBatches
from cae_lib.losses import CAEObjective, NTXentLoss
from cae_lib.models import ContrastiveAutoencoder
from cae_lib.run_trainer import RunTrainer


def join(rank: int, world_size: int, port: int) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=60))


def ntxent_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    """Each rank takes its contiguous slice of the same (z1, z2); saves its loss and input gradients."""
    join(rank, world_size, port)
    z1, z2 = toy_projections()
    n = len(z1) // world_size
    a = z1[rank * n:(rank + 1) * n].clone().requires_grad_(True)
    b = z2[rank * n:(rank + 1) * n].clone().requires_grad_(True)
    loss = NTXentLoss(0.3)(a, b)
    loss.backward()
    torch.save({"loss": loss.detach(), "ga": a.grad, "gb": b.grad}, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


def toy_projections(n: int = 8, d: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, d, generator=g, dtype=torch.float64)


def tiny_setup(epochs: int) -> tuple[CAEConfig, ImageBatches]:
    """A small CAE and 64 images; augmentation off, so a run's randomness is only the seeded batch order."""
    cfg = CAEConfig(dataset="synthetic", augment=AugmentConfig(strength=0.0))
    cfg.model = ModelConfig(latent_dim=8, width=4)
    cfg.train = TrainConfig(epochs=epochs, batch_size=16, lr=1e-2, seed=3, device="cpu", precision="fp32")  # exact comparisons: no autocast
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 64)
    images = (rng.random((64, 28, 28)) * 80 + labels[:, None, None] * 120).astype(np.uint8)
    return cfg, ImageBatches(images, labels)


class Float64Objective:
    """The CAE objective on float64 inputs. Adam moves every weight by about ``lr`` whatever the
    size of its gradient, so in fp32 a gradient near 0 whose sign depends on the order of a sum
    makes two equivalent runs drift apart by ~lr per step; in fp64 they agree to ~1e-12."""

    def __init__(self, cfg: CAEConfig) -> None:
        self.objective = CAEObjective.from_config(cfg)
        self.uses_every_parameter = self.objective.uses_every_parameter

    def __call__(self, model, batch, generator):
        return self.objective(model, (batch[0].double(), *batch[1:]), generator)


def train(epochs: int, state: dict | None = None, stop_after: int | None = None) -> RunTrainer:
    """Train the tiny CAE (in float64) for ``epochs`` epochs in this process (single- or multi-rank).

    ``stop_after``: interrupt after that many epochs, part-way down the learning-rate schedule.
    """
    cfg, data = tiny_setup(epochs)
    torch.manual_seed(0)
    model = ContrastiveAutoencoder(cfg.model).double()
    if state is not None:
        model.load_state_dict(state["model"])

    def interrupt(trainer: RunTrainer, logs: dict) -> None:
        trainer.state.stop = stop_after is not None and trainer.state.epoch >= stop_after

    trainer = RunTrainer(model, Float64Objective(cfg), data, cfg.train, progress=False, callbacks=[interrupt])
    if state is not None:
        trainer.load_state_dict(state["trainer"])
    trainer.fit()
    return trainer


def training_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    """Uninterrupted run of 3 epochs, and a run stopped after 1 epoch and resumed from a checkpoint file."""
    join(rank, world_size, port)
    out = Path(out_dir)
    full = train(3)
    first = train(3, stop_after=1)
    if rank == 0:  # as the CLI does: only rank 0 writes; every rank reads
        torch.save({"model": first.model.state_dict(), "trainer": first.state_dict()}, out / "after_epoch1.pt")
    dist.barrier()
    resumed = train(3, state=torch.load(out / "after_epoch1.pt", weights_only=False))
    if rank == 0:
        torch.save(
            {"full": full.model.state_dict(), "resumed": resumed.model.state_dict(), "history": full.state.history,
             "world_size": full.config.world_size},
            out / "ddp.pt",
        )
    dist.destroy_process_group()


def crash_worker() -> None:
    """Run under torchrun: rank 1 raises after its first epoch; rank 0 would go on training."""
    from cae_lib.distributed import init_from_env, world

    init_from_env(timeout_s=60)
    rank = world()[0]

    def fail_on_rank1(trainer: RunTrainer, logs: dict) -> None:
        if rank == 1:
            raise RuntimeError("simulated failure on rank 1")

    cfg, data = tiny_setup(epochs=50)
    trainer = RunTrainer(ContrastiveAutoencoder(cfg.model), CAEObjective.from_config(cfg), data, cfg.train,
                      progress=False, callbacks=[fail_on_rank1])
    trainer.fit()


if __name__ == "__main__" and sys.argv[1:] == ["crash"]:
    crash_worker()
