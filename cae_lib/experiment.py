"""Running the method: train a CAE from a config and loaded data, load the shipped model, or resume a run.

One code path for "train the default model": :func:`training_data` is the one place a run's
dataset is loaded, :func:`train_cae` the one function that trains a CAE (the command line, the
main job, the benchmark and the notebooks all call it), and :func:`load_or_train` the
"load it if it exists, else train" of the notebooks. Also here: the training budgets
(``--recipe``, :data:`RECIPES`) and the checks and warnings around a run.

The caller locks the run folder once (:class:`cae_lib.run_folder.RunLock`: ``train`` on the command
line, or :func:`load_or_train`); a run records where its data came from (:mod:`cae_lib.data.provenance`)
and warns (:class:`TrainingWarning`) when the contrastive loss never left chance, so a model that
learned nothing is not taken for a trained one.
"""

from __future__ import annotations

import math
import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Sequence

from cae_lib.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from cae_lib.config import CAEConfig, TrainConfig, flat_settings
from cae_lib.data import load_dataset
from cae_lib.data.provenance import check_same_data, dataset_reference, describe, looks_like_path, normalize_reference
from cae_lib.distributed import is_main_process
from cae_lib.losses import CAEObjective
from cae_lib.models import ContrastiveAutoencoder
from cae_lib.batches import ImageBatches
from cae_lib.run_folder import RunLock
from cae_lib.run_trainer import RunTrainer
from cae_lib.machine import peak_memory_mb
from cae_lib.utils import seed_everything

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
#: The command-line option of a config field, where it is not ``--`` + the field name with dashes.
CLI_OPTIONS = {"augment.strength": "--augment-strength", "model.variant": "--variant", "train.precision": "--precision",
               "train.channels_last": "--no-channels-last", "train.sync_batchnorm": "--no-sync-batchnorm"}


#: Named training budgets (``--recipe``), as overrides of :class:`TrainConfig`. ``"default"``: the
#: 160 steps of the validation sweep, which PneumoniaMNIST trains in about 40 s on one CPU core (a
#: Binder session). ``"long"``: ten times the steps, what a user with a GPU, or patience, should run
#: (about 10x the time: 9 to 19 minutes a run on a busy 2-core CPU here, with a progress bar; far less on a GPU); width 16 is kept,
#: as a wider encoder clustered no better on the validation splits
#: (``benchmarks/sweep_clusterers.py``).
RECIPES: dict[str, dict[str, Any]] = {"default": {}, "long": {"steps": 1600}}


def apply_recipe(config: CAEConfig, name: str) -> CAEConfig:
    """Set ``config``'s training budget to the recipe ``name`` (see :data:`RECIPES`); returns ``config``."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    for setting, value in RECIPES[name].items():
        setattr(config.train, setting, value)
    return config


def recipe_of(config: CAEConfig) -> str:
    """The name of the recipe whose budget ``config`` has (``"custom"`` when it matches none)."""
    default = TrainConfig()
    for name, overrides in RECIPES.items():
        wanted = {key: overrides.get(key, getattr(default, key)) for key in ("steps", "epochs")}
        if all(getattr(config.train, key) == value for key, value in wanted.items()):
            return name
    return "custom"


class TrainingWarning(UserWarning):
    """Training finished, but the model may not have learned anything useful (see the message)."""


def build_trainer(config: CAEConfig, train_data: Any, val_data: Any | None = None, progress: bool = True, callbacks=()) -> RunTrainer:
    """A :class:`~cae_lib.run_trainer.RunTrainer` for the CAE described by ``config`` on ``train_data`` (an ImageData)."""
    config.validate()
    seed_everything(config.train.seed)
    model = ContrastiveAutoencoder(config.model)
    return RunTrainer(
        model,
        CAEObjective.from_config(config),
        ImageBatches.from_data(train_data),
        config.train,
        val_data=ImageBatches.from_data(val_data) if val_data is not None else None,
        callbacks=callbacks,
        progress=progress,
    )


def config_for_data(config: CAEConfig, data: Any) -> CAEConfig:
    """Set the channel count and dataset name of ``config`` from the loaded data."""
    config.model.in_channels = int(data.n_channels)
    config.model.image_size = int(data.images.shape[1])
    config.dataset = dataset_reference(data)  # a name for MedMNIST / digits, an absolute path for your own data
    return config


def check_train_settings(config: CAEConfig, n_train: int) -> None:
    """Refuse settings that would fail late or silently mean something else, before training starts.

    Raises:
        ValueError: a batch size below 2, a learning rate that is not a positive number, or a
            batch larger than the training set while the number of epochs follows from the
            step budget (every epoch would be one step, so the default budget would mean
            hundreds of epochs).
    """
    t = config.train
    if t.batch_size < 2:
        raise ValueError(f"the batch size must be at least 2 (NT-Xent compares images within a batch); got {t.batch_size}. "
                         "Set --batch-size (TrainConfig.batch_size), e.g. 256.")
    if not (math.isfinite(t.lr) and t.lr > 0):
        raise ValueError(f"the learning rate must be a positive number, got {t.lr}. Set --lr (TrainConfig.lr), e.g. 0.003.")
    if t.epochs is None and t.batch_size > n_train:
        raise ValueError(
            f"the batch size {t.batch_size} is larger than the {n_train} training images, so every epoch is one step and "
            f"the default budget of {t.steps} steps would mean {t.resolve_epochs(n_train)} epochs. Use a batch size of at "
            f"most {n_train} (--batch-size, TrainConfig.batch_size), or set the number of epochs yourself "
            "(--epochs, TrainConfig.epochs)."
        )


def training_warnings(history: list[dict[str, float]], config: CAEConfig, n_train: int) -> list[str]:
    """Plain-language warnings about a finished run; empty when nothing looks wrong.

    Two checks: a contrastive model whose NT-Xent loss ended within 2 % of chance, log(2N - 1)
    for a batch of N images, learned nothing about which views belong together; and a weight
    average (``ema_decay``) that spans more steps than the run took is close to the plain mean of
    every step's weights, the random start's included.
    """
    return _average_warnings(history, config, n_train) + _chance_warnings(history, config, n_train)


def _average_warnings(history: list[dict[str, float]], config: CAEConfig, n_train: int) -> list[str]:
    decay = config.train.ema_decay
    steps = len(history) * max(1, n_train // config.train.batch_size)  # about: full batches per epoch
    if not history or not decay or 1 / (1 - decay) <= steps:
        return []
    advice = f" For {steps} steps, --ema-decay {1 - 8 / steps:.3g} averages about the last eighth." if steps >= 16 else ""
    return [f"--ema-decay {decay:g} averages about {1 / (1 - decay):.0f} steps, more than this run's {steps} or so: the saved model "
            f"is close to the plain mean of every step's weights, the first ones included.{advice}"]


def _chance_warnings(history: list[dict[str, float]], config: CAEConfig, n_train: int) -> list[str]:
    if not history or config.loss.contrastive_weight <= 0 or "contrastive" not in history[-1]:
        return []
    n = max(2, min(config.train.batch_size, n_train))
    chance = math.log(2 * n - 1)
    last = history[-1]["contrastive"]
    if last < 0.98 * chance:
        return []
    top1 = history[-1].get("top1")
    top1_text = f", the positive pair ranks first for {top1:.1%} of the views" if top1 is not None else ""
    tau = config.loss.temperature
    hot = (f" The temperature is {tau:g}: at that scale every pair of views looks alike to the loss; use 0.1 to 1 "
           "(--temperature, LossConfig.temperature)." if tau > 2 else "")
    return [
        f"the contrastive loss ended at {last:.3f}, which is chance level (log(2 x {n} - 1) = {chance:.3f}){top1_text}: after "
        f"{len(history)} epoch(s) the model has not learned which views belong together, so its codes are not "
        f"worth clustering. Train longer (--epochs, TrainConfig.epochs) or change the learning rate (--lr, "
        f"TrainConfig.lr; now {config.train.lr:g}).{hot}"
    ]


def cli_option(key: str) -> str:
    """The ``train`` option that sets the config key ``key`` (``"train.lr"`` -> ``"--lr"``)."""
    return CLI_OPTIONS.get(key, "--" + key.split(".")[-1].replace("_", "-"))


def config_differences(old: CAEConfig, new: CAEConfig, ignore: tuple[str, ...] = ("train.device", "train.world_size"),
                       keys: Sequence[str] | None = None) -> list[str]:
    """``["train.lr (--lr): 0.003 in the checkpoint, 0.01 now", ...]``: every setting that differs (of ``keys``, if given)."""
    a, b = flat_settings(old.to_dict()), flat_settings(new.to_dict())
    return [f"{key} ({cli_option(key)}): {a.get(key)!r} in the checkpoint, {b.get(key)!r} now"
            for key in differing_settings(old, new, ignore) if keys is None or key in keys]


def differing_settings(old: CAEConfig, new: CAEConfig, ignore: tuple[str, ...] = ("train.device", "train.world_size")) -> list[str]:
    """The dotted config keys (``"train.lr"``, ...) whose values differ between ``old`` and ``new``."""
    a, b = flat_settings(old.to_dict()), flat_settings(new.to_dict())
    if "auto" in (a.get("train.precision"), b.get("train.precision")):
        ignore = (*ignore, "train.precision")  # "auto" matches what it resolved to (see same_settings)
    return [key for key in sorted(set(a) | set(b)) if key not in ignore and a.get(key) != b.get(key)]


def check_splits(train: Any, val: Any | None, config: CAEConfig) -> None:
    """Refuse an empty train or val split, and settings that cannot work on ``train`` (:func:`check_train_settings`)."""
    for split in (train, val):
        if split is not None and len(split) == 0:
            raise ValueError(f"the {split.split} split of {config.dataset} is empty; training needs images in both train and val")
    check_train_settings(config, len(train))


def training_data(config: CAEConfig, data_dir: str | Path | None = None) -> tuple[CAEConfig, Any, Any]:
    """Load the train and val splits of ``config.dataset`` and complete ``config`` from them: the one
    place where a run's dataset name is read (the command line and the notebooks both come here, or
    pass splits they loaded themselves to :func:`train_cae`).

    Returns ``(config, train, val)``: the config with the data's channels, image size and a dataset
    reference that reloads it from anywhere (:func:`config_for_data`; your own file keeps the path
    you gave, even when it is an official MedMNIST file).

    Raises:
        ValueError: an empty train or val split, or settings that cannot work on this many images
            (:func:`check_train_settings`).
    """
    requested = config.dataset
    train, val = (load_dataset(config.dataset, split=s, size=config.size, data_dir=data_dir) for s in ("train", "val"))
    check_splits(train, val, config)
    config = config_for_data(config, train)
    if looks_like_path(requested):
        config.dataset = normalize_reference(requested)
    return config, train, val


def train_cae(
    config: CAEConfig,
    train: Any,
    val: Any | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    resume_from: dict[str, Any] | None = None,
) -> tuple[ContrastiveAutoencoder, list[dict[str, float]], Path | None]:
    """Train the CAE described by ``config`` on ``train`` (an ImageData), validating on ``val``.

    The one function that trains a CAE for the command line, the main job and the notebooks. It
    takes the data already loaded (:func:`training_data` loads a run's splits) and neither locks
    nor checks the run folder: the caller does that once (``train`` on the command line holds
    :class:`~cae_lib.run_folder.RunLock`; :func:`load_or_train` too).

    Args:
        out: a folder; the checkpoint goes to ``out/model.pt`` with ``out/model.json`` beside it,
            rewritten (atomically) after every epoch, so an interrupted run can continue. An
            existing checkpoint there is replaced; the command line refuses that unless told.
        resume_from: a checkpoint payload (:func:`~cae_lib.checkpoint.read_checkpoint`) to continue
            from. Its settings must be ``config``'s (``train --resume`` takes them from it); its
            training data must be ``train`` (checked here, from the recorded fingerprint).

    Returns:
        ``(model in eval mode, history, checkpoint path or None)``.

    Raises:
        CheckpointError: ``resume_from`` was trained on other data.
        TrainingDiverged: a loss term, weight or buffer became NaN / infinite.

    Warns:
        TrainingWarning: the contrastive loss ended at chance level (:func:`training_warnings`).
    """
    provenance = describe(train)
    path = Path(out) / "model.pt" if out is not None else None
    start = time.perf_counter()
    already = 0.0

    def save(trainer: RunTrainer, logs: dict[str, float]) -> None:
        if path is not None and is_main_process():  # under torchrun only rank 0 writes
            extra = {
                "train_seconds": round(time.perf_counter() - start + already, 2),
                "peak_memory_mb": round(peak_memory_mb(), 1),
                "epochs_done": trainer.state.epoch,
                "epochs_total": trainer.epochs,
                "stopped_early": trainer.state.stopped_early,
                "warnings": training_warnings(trainer.state.history, config, len(train)),
            }
            save_checkpoint(path, trainer.model, config, trainer.state.history, trainer.state_dict(), extra, data=provenance)

    trainer = build_trainer(config, train, val, progress=progress, callbacks=[save])
    if resume_from is not None:
        try:
            check_same_data(resume_from.get("data"), provenance, what=f"the run in {path.parent if path else 'the checkpoint'}")
        except ValueError as err:
            raise CheckpointError(f"cannot resume: {err}") from err
        trainer.model.load_state_dict(resume_from["model_state"])
        if resume_from.get("trainer_state"):
            trainer.load_state_dict(resume_from["trainer_state"])
        already = float(resume_from.get("extra", {}).get("train_seconds", 0.0))
    epochs_before = trainer.state.epoch
    history = trainer.fit()
    # The per-epoch save ran before fit() swapped in the weight average: save the final model again.
    if trainer.weight_average is not None and trainer.finished and trainer.state.epoch > epochs_before:
        save(trainer, {})
    for message in training_warnings(history, config, len(train)):
        warnings.warn(message, TrainingWarning, stacklevel=2)
    return trainer.model.eval(), history, path


def pretrained_path(dataset: str, name: str = "cae") -> Path:
    """Where the shipped checkpoint for ``dataset`` lives (it may not exist)."""
    return PRETRAINED_DIR / f"{dataset.lower()}_{name}.pt"


def find_pretrained(config: CAEConfig, name: str = "cae") -> Path | None:
    """The shipped checkpoint whose stored config equals ``config`` (ignoring the device), else None."""
    if looks_like_path(config.dataset):  # your own data: nothing is shipped for it
        return None
    path = pretrained_path(config.dataset, name)
    if not path.exists():
        return None
    try:
        stored = CAEConfig.from_dict(read_checkpoint(path)["config"])
    except CheckpointError:
        return None
    return path if same_settings(stored, config) else None


def same_settings(a: CAEConfig, b: CAEConfig) -> bool:
    """Whether two configs describe the same training run.

    The device it ran on does not count, nor the precision when either side says ``"auto"``: a
    checkpoint records the precision ``"auto"`` resolved to where it trained (bf16 or fp32), and
    it still matches a request for ``"auto"`` on a machine where that resolves differently.
    """
    return not config_differences(a, b, ignore=("train.device",))


def load_or_train(
    config: CAEConfig,
    train: Any,
    val: Any | None = None,
    out: str | Path | None = None,
    retrain: bool = False,
    progress: bool = True,
) -> tuple[ContrastiveAutoencoder, list[dict[str, float]], str]:
    """"Load the pretrained checkpoint if it exists, else train" (UvA tutorial style), on splits already loaded.

    Looks first for a shipped checkpoint with exactly this config and training data, then for
    ``out/model.pt``; otherwise trains on ``train`` (validating on ``val``) and saves to ``out``,
    holding the folder's lock. Returns ``(model, history, where)`` with ``where`` saying which
    model this is. The channel count and image size are first taken from the data (:func:`config_for_data`).
    """
    config = config_for_data(config, train)
    if not retrain:
        candidates = [find_pretrained(config)]
        if out is not None and (Path(out) / "model.pt").exists():
            candidates.append(Path(out) / "model.pt")
        for cand in candidates:
            if cand is None:
                continue
            model, stored, payload = load_checkpoint(cand, expected_dataset=config.dataset)
            if same_settings(stored, config) and _same_data(payload, train):
                return model, payload["history"], f"loaded {cand}"
    check_splits(train, val, config)
    with RunLock(Path(out)) if out is not None else nullcontext():
        model, history, path = train_cae(config, train, val, out=out, progress=progress)
    return model, history, f"trained, saved to {path}" if path else "trained (not saved)"


def _same_data(payload: dict[str, Any], data: Any) -> bool:
    """Whether a checkpoint was trained on ``data`` (True when it records no fingerprint)."""
    try:
        check_same_data(payload.get("data"), describe(data))
    except ValueError:
        return False
    return True
