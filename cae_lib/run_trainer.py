"""The :class:`~cae_lib.trainer.Trainer` as a real run uses it: what the run machinery adds around the loop.

:class:`RunTrainer` is the core trainer plus five things a course reader can skip on a first read
(and a check of the device asked for, :func:`cae_lib.machine.check_device`, whose message says what to type instead):

* **Several processes** (``torchrun``): the model is wrapped in DistributedDataParallel, BatchNorm
  becomes a synchronised one (``TrainConfig.sync_batchnorm``), each rank takes its slice of every
  global batch and its own noise streams, the logs are averaged over the ranks and only rank 0
  shows progress. See :mod:`cae_lib.distributed`.
* **Mixed precision** (``TrainConfig.precision``): the forward pass runs under bf16 or fp16
  autocast; weights, losses and the optimizer stay in fp32. ``"auto"`` is resolved here and the
  precision that ran is written back into the config.
* **Channels-last** memory layout for the convolutions (``TrainConfig.channels_last``).
* **A moving average of the weights** (``TrainConfig.ema_decay``, :mod:`cae_lib.weight_average`),
  swapped in when the run finishes.
* **A stop on NaN / Inf** (:class:`TrainingDiverged`), with the fix in the message, and glibc's
  memory settings while :meth:`fit` runs (:mod:`cae_lib.memory`).

With one process, fp32 and no moving average it computes exactly what the core trainer computes.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from cae_lib.batches import Batch, epoch_batches, epoch_generator
from cae_lib.config import PRECISIONS, TrainConfig
from cae_lib.distributed import all_reduce_mean, convert_sync_batchnorm, shard, world
from cae_lib.machine import check_device
from cae_lib.memory import keep_freed_memory, release_freed_memory
from cae_lib.trainer import Trainer
from cae_lib.weight_average import WeightAverage

__all__ = ["RunTrainer", "TrainingDiverged", "autocast_dtype", "native_bf16", "resolve_precision"]


class TrainingDiverged(RuntimeError):
    """Raised when a loss term, a parameter or a buffer becomes NaN or infinite."""


def native_bf16(device_type: str) -> bool:
    """Whether ``device_type`` ("cpu" or "cuda") computes bfloat16 natively, so bf16 autocast is faster, not emulated."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device_type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(precision: str, device_type: str) -> str:
    """The precision a run uses on ``device_type``: ``"auto"`` becomes ``"bf16"`` (native bf16) or ``"fp32"``;
    ``"fp16"`` off CUDA becomes ``"fp32"`` (fp16 autocast needs CUDA)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device_type) else "fp32"
    return "fp32" if precision == "fp16" and device_type != "cuda" else precision


def autocast_dtype(precision: str, device_type: str) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device_type``; None means plain fp32."""
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[resolve_precision(precision, device_type)]


class RunTrainer(Trainer):
    """:class:`~cae_lib.trainer.Trainer` with several processes, mixed precision, channels-last, a weight
    average, a NaN check and glibc's memory settings (see the module docstring). Same arguments."""

    def __init__(self, model: nn.Module, objective: Any, train_data: Any, config: TrainConfig | None = None, **kwargs: Any) -> None:
        config = config or TrainConfig()
        check_device(config.device)  # "cuda" without a GPU, or "gpu": a message that says what to type
        self.rank, self.world_size = world()
        config.world_size = self.world_size  # recorded in the saved config
        if self.world_size > 1 and config.sync_batchnorm:
            model = convert_sync_batchnorm(model)  # before the optimizer sees the parameters
        super().__init__(model, objective, train_data, config, **kwargs)
        if hasattr(self.model, "use_channels_last"):
            self.model.use_channels_last(self.config.channels_last)
        if self.world_size > 1:
            # DDP averages the gradients over the ranks. It must be told when some parameters get no
            # gradient (the plain AE never uses the projection head); an objective says so with
            # ``uses_every_parameter`` (assumed False when it does not say).
            device_ids = [self.device.index or torch.cuda.current_device()] if self.device.type == "cuda" else None
            unused = not getattr(objective, "uses_every_parameter", False)
            self.train_model = DistributedDataParallel(self.model, device_ids=device_ids, find_unused_parameters=unused)
        self.progress = self.progress and self.rank == 0  # one progress bar, on rank 0
        self.config.precision = resolve_precision(self.config.precision, self.device.type)  # "auto" -> what runs, recorded
        self.autocast_dtype = autocast_dtype(self.config.precision, self.device.type)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        # The run ends with the average (validation during training still sees the current weights);
        # ``keep_best`` takes precedence over it.
        self.weight_average = WeightAverage(self.model, self.config.ema_decay) if self.config.ema_decay else None

    def _batches(self, data: Any, epoch: int | None) -> list[torch.Tensor]:
        """As the core trainer's, then this rank's disjoint slice of each global batch."""
        bs = self.config.batch_size
        seed = self.config.seed if epoch is not None else None
        chunks = epoch_batches(len(data), bs, seed, epoch or 0, min_batch=max(2 * self.world_size, bs // 4))
        return [shard(idx, self.rank, self.world_size) for idx in chunks] if self.world_size > 1 else chunks

    def _epoch_noise(self, epoch: int) -> torch.Generator:
        """Each rank its own augmentation and noise streams (``16 * rank`` added; 0 in a plain run)."""
        offset = 16 * self.rank
        torch.manual_seed(epoch_generator(self.config.seed, epoch, 3 + offset).initial_seed())
        return epoch_generator(self.config.seed, epoch, 1 + offset)

    def _forward(self, batch: Batch, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None):
            return self.objective(self.train_model, batch, generator)

    def _step(self, loss: torch.Tensor, logs: dict[str, float]) -> None:
        self._check_finite(loss, logs)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.weight_average is not None:
            self.weight_average.update(self.model)

    def _mean(self, logs: list[dict[str, float]]) -> dict[str, float]:
        return all_reduce_mean(super()._mean(logs))

    def train_epoch(self) -> dict[str, float]:
        logs = super().train_epoch()
        self._check_finite(None, {})  # the last step's update, before it is saved
        return logs

    def fit(self) -> list[dict[str, float]]:
        """The core :meth:`~cae_lib.trainer.Trainer.fit`, with freed memory kept for the next step while it runs
        (:mod:`cae_lib.memory`), ending with the weight average when the run finished."""
        keep_freed_memory()
        try:
            history = super().fit()
        finally:
            release_freed_memory()
        best_loaded = self.keep_best and self.state.best_weights is not None
        if self.weight_average is not None and self.weight_average.updates and self.finished and not best_loaded:
            self.weight_average.copy_to(self.model)  # not on an interruption: resuming needs the current weights
        return history

    def _check_finite(self, loss: torch.Tensor | None, logs: dict[str, float]) -> None:
        """Stop with :class:`TrainingDiverged` when a loss term, a parameter or a buffer is NaN or infinite.

        Buffers matter: with a huge learning rate BatchNorm's ``running_var`` can overflow to inf
        while the loss itself stays finite, and such a model decodes every code to a black image.
        """
        values = dict(logs)
        if loss is not None and "loss" not in values:
            values["loss"] = float(loss.detach())
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        what = ", ".join(f"loss term {k!r} is {values[k]}" for k in bad) if bad else None
        if what is None:
            tensors = [("parameter", n, t) for n, t in self.model.named_parameters()]
            tensors += [("buffer", n, t) for n, t in self.model.named_buffers() if t.is_floating_point()]
            finite = torch.stack([torch.isfinite(t.detach()).all() for _, _, t in tensors]) if tensors else None
            if finite is None or bool(finite.all()):
                return
            kind, name, t = tensors[int((~finite).nonzero()[0, 0])]
            what = f"{kind} {name} became {'nan' if bool(torch.isnan(t).any()) else 'inf'}"
        lr = self.config.lr
        raise TrainingDiverged(
            f"training diverged at epoch {self.state.epoch + 1}, step {self.state.step}: {what}. The learning rate is probably "
            f"too high: lower it (--lr on the command line, TrainConfig.lr in Python; now {lr:g}, try "
            f"{min(lr / 10, TrainConfig.lr):g}). A higher temperature (--temperature) or gradient clipping (--grad-clip, "
            "TrainConfig.grad_clip) can help too."
        )

    def state_dict(self) -> dict[str, Any]:
        """The core trainer's state plus the gradient scaler and the weight average."""
        average = self.weight_average.state_dict() if self.weight_average is not None else None
        return {**super().state_dict(), "scaler": self.scaler.state_dict(), "weight_average": average}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        super().load_state_dict(d)
        if d.get("scaler"):
            self.scaler.load_state_dict(d["scaler"])
        if self.weight_average is not None and d.get("weight_average"):
            self.weight_average.load_state_dict(d["weight_average"])
