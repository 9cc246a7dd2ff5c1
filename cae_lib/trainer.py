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
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch
import torch.nn as nn

from cae_lib.config import TrainConfig
from cae_lib.utils import pick_device, progress_bar

Batch = tuple[torch.Tensor, ...]
Objective = Callable[[nn.Module, Batch, torch.Generator], tuple[torch.Tensor, dict[str, float]]]


class TrainingDiverged(RuntimeError):
    """Raised when a loss term becomes NaN or infinite."""


class BatchSource(Protocol):
    """What the trainer iterates over: a length and a way to build a batch from row indices."""

    def __len__(self) -> int: ...

    def get_batch(self, indices: torch.Tensor) -> Batch: ...


class ImageBatches:
    """Keeps images as uint8 and converts only the rows of each batch to float.

    Args:
        images: uint8 array (N, H, W) or (N, H, W, C), the MedMNIST layout.
        labels: (N,) integer labels (ignored by unsupervised objectives).

    ``get_batch(idx)`` returns ``(x (B, C, H, W) float in [0, 1], y (B,) long)``.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None) -> None:
        imgs = torch.from_numpy(np.ascontiguousarray(images))
        if imgs.dim() == 3:
            imgs = imgs.unsqueeze(1)
        elif imgs.dim() == 4:
            imgs = imgs.permute(0, 3, 1, 2).contiguous()
        else:
            raise ValueError(f"images must be (N, H, W) or (N, H, W, C), got shape {tuple(images.shape)}")
        self.images = imgs  # uint8 (N, C, H, W)
        n = len(imgs)
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long) if labels is not None else torch.zeros(n, dtype=torch.long)

    @classmethod
    def from_data(cls, data: Any) -> "ImageBatches":
        """Wrap anything with ``.images`` and ``.labels`` (e.g. :func:`cae_lib.data.load_dataset`'s result)."""
        return cls(data.images, data.labels)

    def __len__(self) -> int:
        return len(self.images)

    def get_batch(self, indices: torch.Tensor) -> Batch:
        return self.images[indices].float().div_(255.0), self.labels[indices]


@dataclass
class TrainerState:
    """Everything that changes while training; callbacks may read it and set ``stop``."""

    epoch: int = 0  # epochs completed
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_val: float = math.inf
    epochs_without_improvement: int = 0
    stop: bool = False


Callback = Callable[["Trainer", dict[str, float]], None]


def epoch_generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    """A generator unique to (seed, epoch, stream): stream 0 shuffles, 1 augments, 2 validates."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + epoch * 7919 + stream)


class Trainer:
    """Optimises ``objective`` over ``train_data`` with Adam.

    Args:
        model: any ``nn.Module``.
        objective: ``(model, batch, generator) -> (loss, logs)``.
        train_data: a :class:`BatchSource` (e.g. :class:`ImageBatches`).
        config: a :class:`~cae_lib.config.TrainConfig`.
        val_data: optional; its mean loss is logged as ``val_loss`` and drives early stopping.
        callbacks: functions ``cb(trainer, epoch_logs)`` called after every epoch.
        progress: show a tqdm bar (terminal or notebook widget).
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
    ) -> None:
        self.config = config or TrainConfig()
        self.device = pick_device(self.config.device)
        self.model = model.to(self.device)
        self.objective = objective
        self.train_data = train_data
        self.val_data = val_data
        self.callbacks = list(callbacks)
        self.progress = progress
        self.optimizer = torch.optim.Adam(model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        self.use_amp = bool(self.config.amp and self.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.state = TrainerState()
        if len(train_data) < 2:
            raise ValueError("the training set needs at least 2 images")
        self.epochs = self.config.resolve_epochs(len(train_data))

    # ----------------------------------------------------------------------------------------
    def _batches(self, data: BatchSource, generator: torch.Generator | None, drop_last: bool) -> list[torch.Tensor]:
        n = len(data)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        bs = self.config.batch_size
        chunks = list(order.split(bs))
        if drop_last and len(chunks) > 1 and len(chunks[-1]) < max(2, bs // 4):
            chunks = chunks[:-1]  # a tiny last batch gives NT-Xent too few negatives
        return chunks

    def _to_device(self, batch: Batch) -> Batch:
        return tuple(t.to(self.device, non_blocking=True) for t in batch)

    @staticmethod
    def _check_finite(loss: torch.Tensor, logs: dict[str, float], epoch: int, step: int) -> None:
        bad = [k for k, v in logs.items() if not math.isfinite(v)]
        if bad or not torch.isfinite(loss):
            raise TrainingDiverged(
                f"loss became NaN/Inf at epoch {epoch + 1}, step {step} (loss terms {bad or ['loss']}: "
                f"{ {k: logs[k] for k in bad} }). Try a lower learning rate (TrainConfig.lr), a higher "
                f"temperature, or grad clipping (TrainConfig.grad_clip)."
            )

    def train_epoch(self) -> dict[str, float]:
        """Run one epoch; return the mean of every logged quantity."""
        cfg, epoch = self.config, self.state.epoch
        self.model.train()
        g_shuffle, g_aug = epoch_generator(cfg.seed, epoch, 0), epoch_generator(cfg.seed, epoch, 1)
        torch.manual_seed(epoch_generator(cfg.seed, epoch, 3).initial_seed())  # dropout / reparameterisation noise
        sums: dict[str, float] = {}
        chunks = self._batches(self.train_data, g_shuffle, drop_last=True)
        bar = progress_bar(chunks, desc=f"epoch {epoch + 1}/{self.epochs}", leave=False, disable=not self.progress)
        for idx in bar:
            batch = self._to_device(self.train_data.get_batch(idx))
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
                loss, logs = self.objective(self.model, batch, g_aug)
            self._check_finite(loss, logs, epoch, self.state.step)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg.grad_clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.state.step += 1
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            if hasattr(bar, "set_postfix"):
                bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if k in ("loss", "top1")})
        return {k: v / len(chunks) for k, v in sums.items()}

    @torch.no_grad()
    def evaluate(self, data: BatchSource) -> dict[str, float]:
        """Mean objective over ``data`` in eval mode, with fixed augmentation noise (seed stream 2)."""
        self.model.eval()
        g = epoch_generator(self.config.seed, 0, 2)
        sums: dict[str, float] = {}
        chunks = self._batches(data, None, drop_last=True)
        for idx in chunks:
            _, logs = self.objective(self.model, self._to_device(data.get_batch(idx)), g)
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
        return {k: v / len(chunks) for k, v in sums.items()}

    def fit(self) -> list[dict[str, float]]:
        """Train for ``self.epochs`` epochs (or until early stopping); return the history."""
        cfg = self.config
        outer = progress_bar(total=self.epochs, initial=self.state.epoch, desc="training", disable=not self.progress)
        while self.state.epoch < self.epochs and not self.state.stop:
            t0 = time.perf_counter()
            logs = self.train_epoch()
            if self.val_data is not None:
                logs.update({f"val_{k}": v for k, v in self.evaluate(self.val_data).items()})
            logs["epoch"] = self.state.epoch + 1
            logs["seconds"] = time.perf_counter() - t0
            logs["images_per_sec"] = len(self.train_data) / logs["seconds"]
            self.state.epoch += 1
            self.state.history.append(logs)
            self._early_stopping(logs)
            for cb in self.callbacks:
                cb(self, logs)
            outer.update(1)
            outer.set_postfix({k: f"{logs[k]:.3f}" for k in ("loss", "top1", "val_loss") if k in logs})
        outer.close()
        self.model.eval()
        return self.state.history

    def _early_stopping(self, logs: dict[str, float]) -> None:
        patience = self.config.early_stopping_patience
        if patience is None or "val_loss" not in logs:
            return
        if logs["val_loss"] < self.state.best_val - 1e-4:
            self.state.best_val = logs["val_loss"]
            self.state.epochs_without_improvement = 0
        else:
            self.state.epochs_without_improvement += 1
            if self.state.epochs_without_improvement >= patience:
                self.state.stop = True

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
            "epochs_without_improvement": self.state.epochs_without_improvement,
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(d["optimizer"])
        if d.get("scaler"):
            self.scaler.load_state_dict(d["scaler"])
        self.state.epoch = d["epoch"]
        self.state.step = d["step"]
        self.state.history = list(d["history"])
        self.state.best_val = d.get("best_val", math.inf)
        self.state.epochs_without_improvement = d.get("epochs_without_improvement", 0)
