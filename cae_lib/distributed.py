"""Training on several processes with PyTorch's own engine (``torch.distributed`` + DDP).

Launch any training with ``torchrun``; nothing else changes::

    torchrun --nproc_per_node=4 -m cae_lib train --dataset pneumoniamnist     # 4 GPUs, one machine
    python -m cae_lib train --dataset pneumoniamnist                           # the same, one process

What changes under more than one process (``world_size > 1``), and why:

* **Batches.** ``batch_size`` stays the *global* batch. Each epoch's seeded permutation is the
  one a single process draws (:func:`cae_lib.batches.epoch_batches`); rank ``r`` takes the
  ``r``-th contiguous slice of every batch (:func:`shard`), so the ranks see disjoint rows and
  together the single-process batch (less at most ``world_size - 1`` rows when the batch does
  not divide evenly: ``all_gather`` needs equal slices).
* **Negatives.** NT-Xent takes its negatives from the batch. Each rank gathers every rank's
  projections with :func:`cae_lib.losses.gather_with_grad` (forward: ``all_gather``; backward: the gradients
  of all ranks are summed and each rank keeps its own slice, as in lightly's
  ``gather_distributed``), so the loss sees all ``2N - 2`` negatives of the global batch, and
  its value and gradients do not depend on the number of processes.
* **BatchNorm.** :func:`convert_sync_batchnorm` swaps every BatchNorm for
  :class:`SyncBatchNorm`, which normalises with the statistics of the global batch. Ours works
  on every backend (``torch.nn.SyncBatchNorm`` refuses CPU tensors, so it could not be tested
  on a CPU machine with gloo); the two are the same computation.
* **Who writes.** Only rank 0 shows progress bars and writes checkpoints, history and results
  (:func:`is_main_process`).
* **Failures.** A rank that raises ends its process; ``torchrun`` then stops the others and
  prints the failed rank's error. Collectives have a timeout (:func:`init_from_env`), so no
  rank waits forever.

Augmentation and other noise come from per-rank streams (:func:`~cae_lib.batches.epoch_generator`
streams ``1 + 16 * rank`` and ``3 + 16 * rank``), so runs are exactly
reproducible for a given world size, and ``world_size = 1`` reproduces a plain run bit for bit.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
import torch.nn as nn


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` when no process group is running."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_distributed() -> bool:
    """True when more than one process trains together."""
    return world()[1] > 1


def is_main_process() -> bool:
    """True on rank 0 (and in a plain single-process run): the process that writes files."""
    return world()[0] == 0


def launched_by_torchrun() -> bool:
    """True when ``torchrun`` (or another launcher) set ``WORLD_SIZE`` > 1 for this process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(timeout_s: float = 300.0) -> torch.device:
    """Join the process group that ``torchrun`` describes in the environment; return this rank's device.

    Uses NCCL with one GPU per process (``cuda:LOCAL_RANK``) when CUDA is available, gloo on the
    CPU otherwise. Outside ``torchrun`` it does nothing and returns the CPU (the caller picks the
    device as usual). ``timeout_s`` bounds every collective: a rank whose partner died gives up
    instead of waiting forever.
    """
    if not launched_by_torchrun() or dist.is_initialized():
        return torch.device("cpu")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s) are visible; "
                "use --nproc_per_node <= the number of GPUs"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return device


def shutdown() -> None:
    """Leave the process group (safe to call when there is none)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(indices: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s contiguous slice of one global batch of row indices.

    Every rank gets ``len(indices) // world_size`` rows (all_gather needs equal sizes); the last
    ``len(indices) % world_size`` rows of the batch are left out, at most ``world_size - 1``.
    """
    per_rank = len(indices) // world_size
    if per_rank < 1:
        raise ValueError(f"a batch of {len(indices)} rows cannot feed {world_size} processes; raise batch_size")
    return indices[rank * per_rank:(rank + 1) * per_rank]


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward sums the gradients over ranks (every rank's loss uses the sum)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        total = x.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        total = grad.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch of all ranks, on any backend (CPU/gloo included).

    In training it all-reduces each channel's count and sum, then the sum of squared deviations
    from the global mean (differentiably; two passes, as BatchNorm itself, so no cancellation),
    normalises with the global mean and biased variance, and updates the running statistics
    with the global unbiased variance: exactly what one process would compute on the whole
    batch. In eval mode, or without a process group, it is a plain BatchNorm.

    Shapes: ``(B, C)`` or ``(B, C, *)``.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input (B, C, ...), got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not (self.training and is_distributed()):
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        xf = x.to(torch.promote_types(x.dtype, torch.float32))  # statistics in fp32 at least (fp64 stays fp64)
        c, shape = x.shape[1], [1, x.shape[1]] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() / c], dtype=xf.dtype, device=x.device)
        sums = _AllReduceSum.apply(torch.cat([count, xf.sum(dims)]))  # differentiable sums over ranks
        n, mean = sums[0], sums[1:] / sums[0]
        centred = xf - mean.view(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims)) / n  # two passes, as BatchNorm does: no cancellation
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1).clamp_min(1), alpha=m)
        out = centred * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm1d/2d/3d in ``module`` by :class:`SyncBatchNorm`, keeping weights and statistics."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, SyncBatchNorm):
        floats = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
        factory = {"device": floats[0].device, "dtype": floats[0].dtype} if floats else {}
        new = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats, **factory)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child))
    return module


def all_reduce_mean(values: dict[str, float]) -> dict[str, float]:
    """Average a dict of floats over the ranks (one collective); the dict itself without a process group."""
    if not is_distributed() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return {k: float(v) / dist.get_world_size() for k, v in zip(keys, t.cpu())}

