"""A model-agnostic training loop (in the spirit of minGPT's ``Trainer``).

Nothing here knows about autoencoders: the trainer optimises whatever ``objective`` returns,

    objective(model, batch, generator) -> (loss: scalar tensor, logs: dict[str, float])

so the same loop trains the CAE (:class:`~cae_lib.losses.CAEObjective`) and the supervised
baselines. It adds what a course needs around that: a progress bar that works in terminals and
notebooks, per-epoch history, validation, early stopping, callbacks, seeding, automatic device
choice, a clear stop on NaN/Inf, and exact resumption from a checkpoint.

Reproducibility: the shuffling and the augmentation noise of epoch ``e`` come from generators
seeded with ``(seed, e)``, so a run resumed at epoch ``e`` replays exactly what an uninterrupted
run would have done.

Several processes (``torchrun``): when a process group is running, the trainer wraps the model in
DistributedDataParallel, swaps BatchNorm for a synchronised one (``TrainConfig.sync_batchnorm``),
gives each rank its slice of every global batch, averages the logs over the ranks and shows one
progress bar. Callbacks run on every rank; those that write files check
:func:`cae_lib.distributed.is_main_process`. See :mod:`cae_lib.distributed`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from cae_lib.config import TrainConfig
from cae_lib.data.batches import Batch, ImageBatches, epoch_batches, epoch_generator
from cae_lib.distributed import all_reduce_mean, convert_sync_batchnorm, shard, world
from cae_lib.memory import keep_freed_memory, release_freed_memory
from cae_lib.schedule import learning_rate
from cae_lib.utils import pick_device, progress_bar
from cae_lib.weight_average import WeightAverage

__all__ = ["BatchSource", "ImageBatches", "Trainer", "TrainerState", "TrainingDiverged", "epoch_generator"]
Objective = Callable[[nn.Module, Batch, torch.Generator], tuple[torch.Tensor, dict[str, float]]]


class TrainingDiverged(RuntimeError):
    """Raised when a loss term, a parameter or a buffer becomes NaN or infinite."""


class BatchSource(Protocol):
    """What the trainer iterates over: a length and a way to build a batch from row indices."""

    def __len__(self) -> int: ...

    def get_batch(self, indices: torch.Tensor) -> Batch: ...


@dataclass
class TrainerState:
    """Everything that changes while training; callbacks may read it and set ``stop``."""

    epoch: int = 0  # epochs completed
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_val: float = math.inf  # best value of the monitored quantity so far
    best_epoch: int = 0  # 1-based epoch that reached it (0: none yet)
    best_weights: dict[str, torch.Tensor] | None = None  # its weights, when the trainer keeps the best
    epochs_without_improvement: int = 0
    stop: bool = False  # set by a callback (an interruption) or by early stopping
    stopped_early: bool = False  # early stopping ended the run


Callback = Callable[["Trainer", dict[str, float]], None]


class Trainer:
    """Optimises ``objective`` over ``train_data`` with Adam.

    Args:
        model: any ``nn.Module``.
        objective: ``(model, batch, generator) -> (loss, logs)``.
        train_data: a :class:`BatchSource` (e.g. :class:`ImageBatches`).
        config: a :class:`~cae_lib.config.TrainConfig`.
        val_data: optional; its mean objective terms are logged as ``val_loss``, ``val_top1``, ...
        callbacks: functions ``cb(trainer, epoch_logs)`` called after every epoch.
        progress: show a tqdm bar (terminal or notebook widget).
        validate: optional ``validate(model) -> dict[str, float]`` called after every epoch (in
            eval mode, e.g. a classifier's exact validation accuracy); its values join the logs.
        monitor: the logged quantity that defines "best" (default ``"val_loss"``).
        mode: ``"min"`` (lower is better) or ``"max"``.
        keep_best: keep a copy of the weights of the best epoch and load them when training ends.

    Early stopping (``config.early_stopping_patience``) and ``keep_best`` are one mechanism: an
    epoch improves when ``monitor`` beats the best value by more than 1e-4; after ``patience``
    epochs without improvement the run stops. Without ``monitor`` in the logs neither applies.
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        train_data: BatchSource,
        config: TrainConfig | None = None,
        val_data: BatchSource | None = None,
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
        validate: Callable[[nn.Module], dict[str, float]] | None = None,
        monitor: str = "val_loss",
        mode: str = "min",
        keep_best: bool = False,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.config = config or TrainConfig()
        self.rank, self.world_size = world()
        self.config.world_size = self.world_size  # recorded in the saved config
        self.device = pick_device(self.config.device)
        if self.world_size > 1 and self.config.sync_batchnorm:
            model = convert_sync_batchnorm(model)
        self.model = model.to(self.device)
        if hasattr(model, "use_channels_last"):
            model.use_channels_last(self.config.channels_last)
        # What the objective calls: the model itself, or its DDP wrapper, which averages the
        # gradients over the ranks. DDP must be told when some parameters get no gradient (the
        # plain AE never uses the projection head); an objective says so with
        # ``uses_every_parameter`` (assumed False when it does not say).
        self.train_model: nn.Module = model
        if self.world_size > 1:
            device_ids = [self.device.index or torch.cuda.current_device()] if self.device.type == "cuda" else None
            unused = not getattr(objective, "uses_every_parameter", False)
            self.train_model = DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=unused)
        self.objective = objective
        self.train_data = train_data
        self.val_data = val_data
        self.callbacks = list(callbacks)
        self.progress = progress and self.rank == 0  # one progress bar, on rank 0
        self.optimizer = torch.optim.Adam(model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        self.config.validate()
        self.config.precision = self.config.resolve_precision(self.device.type)  # "auto" -> what runs, recorded
        self.autocast_dtype = self.config.autocast_dtype(self.device.type)
        self.use_amp = self.autocast_dtype is not None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        self.validate = validate
        self.monitor, self.mode, self.keep_best = monitor, mode, keep_best
        self.state = TrainerState(best_val=math.inf if mode == "min" else -math.inf)
        # With ``config.ema_decay`` the run ends with a moving average of its weights (validation
        # during training still sees the current weights); ``keep_best`` takes precedence over it.
        self.weight_average = WeightAverage(self.model, self.config.ema_decay) if self.config.ema_decay else None
        if len(train_data) < 2:
            raise ValueError("the training set needs at least 2 images")
        self.epochs = self.config.resolve_epochs(len(train_data))
        self.total_steps = self.epochs * len(self._batches(train_data, 0))  # the schedule's length

    # ----------------------------------------------------------------------------------------
    def _batches(self, data: BatchSource, epoch: int | None) -> list[torch.Tensor]:
        """Epoch ``epoch``'s shuffled batches (``None``: file order), minus a tiny last batch,
        which would give NT-Xent too few negatives."""
        bs = self.config.batch_size
        seed = self.config.seed if epoch is not None else None
        chunks = epoch_batches(len(data), bs, seed, epoch or 0, min_batch=max(2 * self.world_size, bs // 4))
        if self.world_size > 1:  # this rank's disjoint slice of each global batch
            chunks = [shard(idx, self.rank, self.world_size) for idx in chunks]
        return chunks

    def _to_device(self, batch: Batch) -> Batch:
        return tuple(t.to(self.device, non_blocking=True) for t in batch)

    def _check_finite(self, loss: torch.Tensor | None, logs: dict[str, float], epoch: int, step: int) -> None:
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
            value = "nan" if bool(torch.isnan(t).any()) else "inf"
            what = f"{kind} {name} became {value}"
        lr = self.config.lr
        raise TrainingDiverged(
            f"training diverged at epoch {epoch + 1}, step {step}: {what}. The learning rate is probably too high: "
            f"lower it (--lr on the command line, TrainConfig.lr in Python; now {lr:g}, try {min(lr / 10, TrainConfig.lr):g}). "
            "A higher temperature (--temperature) or gradient clipping (--grad-clip, TrainConfig.grad_clip) can help too."
        )

    def train_epoch(self) -> dict[str, float]:
        """Run one epoch; return the mean of every logged quantity."""
        cfg, epoch = self.config, self.state.epoch
        self.model.train()
        per_rank = 16 * self.rank  # each rank its own augmentation and noise streams (0 in a plain run)
        g_aug = epoch_generator(cfg.seed, epoch, 1 + per_rank)
        torch.manual_seed(epoch_generator(cfg.seed, epoch, 3 + per_rank).initial_seed())  # dropout / reparameterisation noise
        sums: dict[str, float] = {}
        chunks = self._batches(self.train_data, epoch)
        bar = progress_bar(chunks, desc=f"epoch {epoch + 1}/{self.epochs}", leave=False, disable=not self.progress)
        for idx in bar:
            self._set_learning_rate()
            batch = self._to_device(self.train_data.get_batch(idx))
            with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.use_amp):
                loss, logs = self.objective(self.train_model, batch, g_aug)
            self._check_finite(loss, logs, epoch, self.state.step)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg.grad_clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.weight_average is not None:
                self.weight_average.update(self.model)
            self.state.step += 1
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            if hasattr(bar, "set_postfix"):
                bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if k in ("loss", "top1")})
        self._check_finite(None, {}, epoch, self.state.step)  # the last step's update, before it is saved
        return all_reduce_mean({k: v / len(chunks) for k, v in sums.items()})

    def _set_learning_rate(self) -> None:
        """The rate of the coming step, a function of the step number alone (exact on resume)."""
        cfg = self.config
        lr = learning_rate(self.state.step, self.total_steps, cfg.lr, cfg.schedule, cfg.warmup_fraction)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    @torch.no_grad()
    def evaluate(self, data: BatchSource) -> dict[str, float]:
        """Mean objective over ``data`` in eval mode, with fixed augmentation noise (seed stream 2).

        Like training, it skips a last batch smaller than ``batch_size // 4`` (too few NT-Xent negatives).
        """
        self.model.eval()
        g = epoch_generator(self.config.seed, 0, 2)
        sums: dict[str, float] = {}
        chunks = self._batches(data, None)
        for idx in chunks:
            _, logs = self.objective(self.model, self._to_device(data.get_batch(idx)), g)
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
        return all_reduce_mean({k: v / len(chunks) for k, v in sums.items()})

    def fit(self) -> list[dict[str, float]]:
        """Train for ``self.epochs`` epochs (or until early stopping); return the history."""
        keep_freed_memory()  # reuse each step's activation memory: no page faults (see cae_lib.memory)
        try:
            return self._fit()
        finally:
            release_freed_memory()

    def _fit(self) -> list[dict[str, float]]:
        outer = progress_bar(total=self.epochs, initial=self.state.epoch, desc="training", disable=not self.progress)
        while self.state.epoch < self.epochs and not self.state.stop:
            t0 = time.perf_counter()
            logs = self.train_epoch()
            if self.val_data is not None:
                logs.update({f"val_{k}": v for k, v in self.evaluate(self.val_data).items()})
            if self.validate is not None:
                logs.update(self.validate(self.model))
            logs["epoch"] = self.state.epoch + 1
            logs["seconds"] = time.perf_counter() - t0
            logs["images_per_sec"] = len(self.train_data) / logs["seconds"]
            logs["lr"] = self.optimizer.param_groups[0]["lr"]  # the rate of the epoch's last step
            self.state.epoch += 1
            self.state.history.append(logs)
            self._track_best(logs)
            for cb in self.callbacks:
                cb(self, logs)
            outer.update(1)
            outer.set_postfix({k: f"{logs[k]:.3f}" for k in ("loss", "top1", "val_loss") if k in logs})
        outer.close()
        if self.keep_best and self.state.best_weights is not None:
            self.model.load_state_dict(self.state.best_weights)
        elif self.weight_average is not None and self.weight_average.updates and self.finished:
            self.weight_average.copy_to(self.model)  # not on an interruption: resuming needs the current weights
        self.model.eval()
        return self.state.history

    def _track_best(self, logs: dict[str, float]) -> None:
        """Early stopping and best-weights keeping: the one place where "best epoch" is decided."""
        value = logs.get(self.monitor)
        if value is None:
            return
        better = value < self.state.best_val - 1e-4 if self.mode == "min" else value > self.state.best_val + 1e-4
        if better:
            self.state.best_val, self.state.best_epoch = value, int(logs["epoch"])
            self.state.epochs_without_improvement = 0
            if self.keep_best:
                self.state.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            return
        self.state.epochs_without_improvement += 1
        patience = self.config.early_stopping_patience
        if patience is not None and self.state.epochs_without_improvement >= patience:
            self.state.stop = self.state.stopped_early = True

    @property
    def finished(self) -> bool:
        """Whether the run is over: every epoch done, or stopped early (not interrupted by a callback)."""
        return self.state.epoch >= self.epochs or self.state.stopped_early

    # ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Optimizer + loop state, for exact resumption (the model weights are saved separately)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.state.epoch,
            "step": self.state.step,
            "history": self.state.history,
            "best_val": self.state.best_val,
            "best_epoch": self.state.best_epoch,
            "best_weights": self.state.best_weights,
            "epochs_without_improvement": self.state.epochs_without_improvement,
            "stopped_early": self.state.stopped_early,
            "weight_average": self.weight_average.state_dict() if self.weight_average is not None else None,
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(d["optimizer"])
        if d.get("scaler"):
            self.scaler.load_state_dict(d["scaler"])
        self.state.epoch = d["epoch"]
        self.state.step = d["step"]
        self.state.history = list(d["history"])
        self.state.best_val = d.get("best_val", self.state.best_val)
        self.state.best_epoch = d.get("best_epoch", 0)
        self.state.best_weights = d.get("best_weights")
        self.state.epochs_without_improvement = d.get("epochs_without_improvement", 0)
        self.state.stopped_early = self.state.stop = bool(d.get("stopped_early", False))  # a run that stopped early is over
        if self.weight_average is not None and d.get("weight_average"):
            self.weight_average.load_state_dict(d["weight_average"])
