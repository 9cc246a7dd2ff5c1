"""A model-agnostic training loop (in the spirit of minGPT's ``Trainer``).

Nothing here knows about autoencoders: the trainer optimises whatever ``objective`` returns,

    objective(model, batch, generator) -> (loss: scalar tensor, logs: dict[str, float])

so the same loop trains the CAE (:class:`~cae_lib.losses.CAEObjective`) and the supervised
baselines. One step is: set the learning rate (:mod:`cae_lib.schedule`), build the batch
(:mod:`cae_lib.batches`), call the objective, backpropagate, clip the gradient norm, take an Adam
step. After every epoch come validation, the history, early stopping / the best epoch, and the
callbacks ``cb(trainer, epoch_logs)`` (saving a checkpoint is one).

Reproducibility: the shuffling and the augmentation noise of epoch ``e`` come from generators
seeded with ``(seed, e)``, so a run resumed at epoch ``e`` replays exactly what an uninterrupted
run would have done.

What a run adds around this loop (several processes, mixed precision, a moving average of the
weights, the NaN check, glibc's memory settings) lives in :class:`cae_lib.run_trainer.RunTrainer`,
a subclass that overrides the small methods below (``_forward``, ``_step``, ``_batches``, ...).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import torch
import torch.nn as nn

from cae_lib.batches import Batch, epoch_batches, epoch_generator
from cae_lib.schedule import learning_rate
from cae_lib.utils import pick_device, progress_bar

__all__ = ["BatchSource", "TrainConfig", "Trainer", "TrainerState"]
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SCHEDULES = ("cosine", "constant")


@dataclass
class TrainConfig:
    """Optimisation settings.

    ``epochs=None`` (the default) means "enough epochs for ``steps`` optimisation steps" (9
    epochs on PneumoniaMNIST, 80 on BreastMNIST), so a small dataset gets the same budget as a
    large one. The learning rate follows ``schedule``: ``"cosine"`` (the default) warms up over
    ``warmup_fraction`` of the steps, then decays to 0 along a half cosine (:mod:`cae_lib.schedule`);
    ``"constant"`` keeps ``lr`` (what a saved config without a ``schedule`` key means). Why each
    default: ``benchmarks/results/sweep_defaults.md`` (validation splits only).

    The run machinery (:class:`cae_lib.run_trainer.RunTrainer`) reads the rest: ``ema_decay`` (end
    with a moving average of the weights over about ``1 / (1 - ema_decay)`` steps), ``precision``
    (``"auto"``: bf16 autocast where the processor computes bf16 natively, else fp32; the
    precision that ran is written back), ``channels_last``, ``sync_batchnorm`` and ``world_size``.
    """

    epochs: int | None = None
    steps: int = 160
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-5
    schedule: str = "cosine"
    warmup_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"
    early_stopping_patience: int | None = None
    grad_clip: float | None = 5.0
    ema_decay: float | None = None  # keep a moving average of the weights (cae_lib.weight_average) and end with it; None: the last step's weights
    precision: str = "auto"  # "auto", "fp32", "bf16" (CUDA, or a CPU with bf16 support) or "fp16" (CUDA only)
    channels_last: bool = True  # NHWC memory layout for the convolutions
    sync_batchnorm: bool = True  # under DDP: BatchNorm statistics over the global batch
    world_size: int = 1  # processes that trained together; set by the trainer, recorded for tracing

    def validate(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {self.schedule!r}; choose one of {SCHEDULES}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1) or None, got {self.ema_decay}; 0.95 averages about the last 20 steps")

    def resolve_epochs(self, n_images: int) -> int:
        """Number of epochs to run on ``n_images`` training images (see the class docstring)."""
        if self.epochs is not None:
            if self.epochs < 1:
                raise ValueError(f"epochs must be >= 1, got {self.epochs}")
            return int(self.epochs)
        full_batches = max(1, n_images // self.batch_size)
        return max(1, -(-self.steps // full_batches))  # ceil


Objective = Callable[[nn.Module, Batch, torch.Generator], tuple[torch.Tensor, dict[str, float]]]
Callback = Callable[["Trainer", dict[str, float]], None]


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


class Trainer:
    """Optimises ``objective`` over ``train_data`` with Adam.

    Args:
        model: any ``nn.Module``.
        objective: ``(model, batch, generator) -> (loss, logs)``.
        train_data: a :class:`BatchSource` (e.g. :class:`~cae_lib.batches.ImageBatches`).
        config: a :class:`~cae_lib.config.TrainConfig`.
        val_data: optional; its mean objective terms are logged as ``val_loss``, ``val_top1``, ...
        callbacks: functions ``cb(trainer, epoch_logs)`` called after every epoch.
        progress: show a tqdm bar (terminal or notebook widget).
        validate: optional ``validate(model) -> dict[str, float]``, called after every epoch in eval
            mode (e.g. a classifier's exact validation accuracy); its values join the logs.
        monitor, mode, keep_best: the logged quantity that defines "best" (``"val_loss"``), whether
            lower (``"min"``) or higher (``"max"``) is better, and whether to end with the best epoch's weights.

    Early stopping (``config.early_stopping_patience``) and ``keep_best`` are one mechanism: an epoch
    improves when ``monitor`` beats the best by more than 1e-4; ``patience`` epochs without improvement stop the run.
    """

    def __init__(self, model: nn.Module, objective: Objective, train_data: BatchSource, config: TrainConfig | None = None,
                 val_data: BatchSource | None = None, callbacks: Sequence[Callback] = (), progress: bool = True,
                 validate: Callable[[nn.Module], dict[str, float]] | None = None, monitor: str = "val_loss",
                 mode: str = "min", keep_best: bool = False) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if len(train_data) < 2:
            raise ValueError("the training set needs at least 2 images")
        self.config = config or TrainConfig()
        self.config.validate()
        self.device = pick_device(self.config.device)
        self.model = model.to(self.device)
        self.train_model: nn.Module = self.model  # what the objective calls (RunTrainer: a DDP wrapper)
        self.objective, self.train_data, self.val_data = objective, train_data, val_data
        self.callbacks, self.progress, self.validate = list(callbacks), progress, validate
        self.monitor, self.mode, self.keep_best = monitor, mode, keep_best
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        self.state = TrainerState(best_val=math.inf if mode == "min" else -math.inf)
        self.epochs = self.config.resolve_epochs(len(train_data))
        self.total_steps = self.epochs * len(self._batches(train_data, 0))  # the schedule's length

    def _batches(self, data: BatchSource, epoch: int | None) -> list[torch.Tensor]:
        """Epoch ``epoch``'s shuffled batches of row indices (``None``: file order), minus a tiny
        last batch (under ``batch_size // 4``), which would give NT-Xent too few negatives."""
        bs = self.config.batch_size
        seed = self.config.seed if epoch is not None else None
        return epoch_batches(len(data), bs, seed, epoch or 0, min_batch=max(2, bs // 4))

    def _epoch_noise(self, epoch: int) -> torch.Generator:
        """The augmentation generator of ``epoch`` (stream 1); seeds torch's own RNG for dropout or
        the VAE's sampling noise (stream 3)."""
        torch.manual_seed(epoch_generator(self.config.seed, epoch, 3).initial_seed())
        return epoch_generator(self.config.seed, epoch, 1)

    def _forward(self, batch: Batch, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        return self.objective(self.train_model, batch, generator)

    def _step(self, loss: torch.Tensor, logs: dict[str, float]) -> None:
        """Backpropagate ``loss``, clip the gradient norm to ``config.grad_clip``, take one Adam step."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()

    def _mean(self, logs: list[dict[str, float]]) -> dict[str, float]:
        """The mean of every logged quantity over the steps (RunTrainer: and over the processes)."""
        return {k: sum(step[k] for step in logs) / len(logs) for k in logs[0]}

    def train_epoch(self) -> dict[str, float]:
        """Run one epoch; return the mean of every logged quantity."""
        self.model.train()
        generator = self._epoch_noise(self.state.epoch)
        steps: list[dict[str, float]] = []
        chunks = self._batches(self.train_data, self.state.epoch)
        bar = progress_bar(chunks, desc=f"epoch {self.state.epoch + 1}/{self.epochs}", leave=False, disable=not self.progress)
        for idx in bar:
            lr = learning_rate(self.state.step, self.total_steps, self.config.lr, self.config.schedule, self.config.warmup_fraction)
            for group in self.optimizer.param_groups:  # a function of the step number alone: exact on resume
                group["lr"] = lr
            batch = tuple(t.to(self.device, non_blocking=True) for t in self.train_data.get_batch(idx))
            loss, logs = self._forward(batch, generator)
            self._step(loss, logs)
            self.state.step += 1
            steps.append(logs)
            bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if k in ("loss", "top1")})
        return self._mean(steps)

    @torch.no_grad()
    def evaluate(self, data: BatchSource) -> dict[str, float]:
        """Mean objective over ``data`` in eval mode, with fixed augmentation noise (seed stream 2)."""
        self.model.eval()
        generator = epoch_generator(self.config.seed, 0, 2)
        batches = (tuple(t.to(self.device) for t in data.get_batch(idx)) for idx in self._batches(data, None))
        return self._mean([self.objective(self.model, batch, generator)[1] for batch in batches])

    def fit(self) -> list[dict[str, float]]:
        """Train for ``self.epochs`` epochs (or until early stopping or a callback stops it); return the history."""
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
        self.model.eval()
        return self.state.history

    def _track_best(self, logs: dict[str, float]) -> None:
        """Early stopping and best-weights keeping: the one place where "best epoch" is decided."""
        value, s = logs.get(self.monitor), self.state
        if value is None:
            return
        if value < s.best_val - 1e-4 if self.mode == "min" else value > s.best_val + 1e-4:
            s.best_val, s.best_epoch, s.epochs_without_improvement = value, int(logs["epoch"]), 0
            if self.keep_best:
                s.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            return
        s.epochs_without_improvement += 1
        patience = self.config.early_stopping_patience
        if patience is not None and s.epochs_without_improvement >= patience:
            s.stop = s.stopped_early = True

    @property
    def finished(self) -> bool:
        """Whether the run is over: every epoch done, or stopped early (not interrupted by a callback)."""
        return self.state.epoch >= self.epochs or self.state.stopped_early

    def state_dict(self) -> dict[str, Any]:
        """The optimizer and the loop state, for exact resumption (the model weights are saved separately)."""
        s = self.state
        return {"optimizer": self.optimizer.state_dict(), "epoch": s.epoch, "step": s.step, "history": s.history,
                "best_val": s.best_val, "best_epoch": s.best_epoch, "best_weights": s.best_weights,
                "epochs_without_improvement": s.epochs_without_improvement, "stopped_early": s.stopped_early}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(d["optimizer"])
        s = self.state
        s.epoch, s.step, s.history = d["epoch"], d["step"], list(d["history"])
        s.best_val, s.best_epoch = d.get("best_val", s.best_val), d.get("best_epoch", 0)
        s.best_weights, s.epochs_without_improvement = d.get("best_weights"), d.get("epochs_without_improvement", 0)
        s.stopped_early = s.stop = bool(d.get("stopped_early", False))  # a run that stopped early is over
