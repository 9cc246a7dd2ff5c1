"""``python -m cae_lib train``: train a CAE (or any ablation) and save a checkpoint + config JSON.

Every run gets a folder of its own (default ``runs/<dataset>-<preset>-<time>``). A folder that
already holds a run is refused unless ``--resume`` continues it or ``--overwrite`` replaces it, and
a folder in use by another training is refused outright (:mod:`cae_lib.run_folder`). Everything
is checked before the first epoch. Ctrl-C stops with one line saying where the last checkpoint is
and the command that continues it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from contextlib import nullcontext
from pathlib import Path

from cae_lib.commands.options import (
    add_data_args,
    add_progress_arg,
    batch_size,
    ema_decay,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    temperature,
    warmup_fraction,
)
from cae_lib.commands.outputs import warn
from cae_lib.checkpoint import CheckpointError, read_checkpoint, run_finished
from cae_lib.config import PRECISIONS, SCHEDULES, CAEConfig, preset
from cae_lib.data.provenance import looks_like_path, normalize_reference
from cae_lib.distributed import init_from_env, is_main_process, launched_by_torchrun, shutdown
from cae_lib.experiment import (
    RECIPES,
    TrainingWarning,
    apply_recipe,
    cli_option,
    config_differences,
    differing_settings,
    train_cae,
    training_data,
)
from cae_lib.run_folder import RunLock, check_run_dir, clear_run_files, default_run_dir
from cae_lib.run_trainer import TrainingDiverged
from cae_lib.files import DiskFullError
from cae_lib.machine import check_device

HELP = "train a CAE and save a checkpoint"
PRESETS = ("cae", "ae", "contrastive", "vae", "cvae")


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The ablation preset and every model, loss and training setting, defaulting to :class:`CAEConfig`."""
    d = CAEConfig()
    p.add_argument("--preset", default="cae", choices=PRESETS,
                   help="which model: cae (reconstruction + contrastive), ae (reconstruction only), contrastive (contrastive only), "
                        "vae, cvae (contrastive VAE)")
    p.add_argument("--variant", choices=["ae", "vae"], default=None, help="override the preset's variant (default: the preset's)")
    p.add_argument("--latent-dim", type=positive_int, default=d.model.latent_dim, help="size of the latent code z")
    p.add_argument("--width", type=positive_int, default=d.model.width, help="channels of the first convolution (later blocks use 2x and 4x)")
    p.add_argument("--temperature", type=temperature, default=d.loss.temperature, help="NT-Xent temperature tau (> 0.01)")
    p.add_argument("--recon-weight", type=non_negative_float, default=None, help="weight of the reconstruction loss (default: the preset's)")
    p.add_argument("--contrastive-weight", type=non_negative_float, default=None, help="weight of the NT-Xent loss (default: the preset's)")
    p.add_argument("--kl-weight", type=non_negative_float, default=None, help="weight of the KL term, VAE only (default: the preset's)")
    p.add_argument("--recon", choices=["mse", "bce"], default=d.loss.recon, help="reconstruction loss")
    p.add_argument("--recon-views", type=int, choices=[1, 2], default=d.loss.recon_views,
                   help="reconstruct both augmented views of each image, or only the first (a step about a quarter cheaper)")
    p.add_argument("--augment-strength", type=non_negative_float, default=d.augment.strength,
                   help="scales every augmentation at once (0: identical views, 2: aggressive)")
    p.add_argument("--epochs", type=positive_int, default=d.train.epochs,
                   help=f"passes over the training set (default: enough for {d.train.steps} optimisation steps, 9 on PneumoniaMNIST)")
    p.add_argument("--batch-size", type=batch_size, default=d.train.batch_size, help="images per optimisation step")
    p.add_argument("--recipe", choices=list(RECIPES), default="default",
                   help=f"the training budget: default ({d.train.steps} steps, about 40 s on one CPU core for PneumoniaMNIST), or long "
                        f"({RECIPES['long']['steps']:,} steps, about ten times as long: what to run with a GPU, or patience)")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="optimisation steps when --epochs is not given, rounded up to whole epochs (default: the recipe's)")
    p.add_argument("--lr", type=positive_float, default=d.train.lr, help="Adam's peak learning rate")
    p.add_argument("--schedule", choices=SCHEDULES, default=d.train.schedule,
                   help="cosine: linear warm-up, then a half-cosine decay to 0; constant: the same rate throughout")
    p.add_argument("--warmup-fraction", type=warmup_fraction, default=d.train.warmup_fraction,
                   help="share of the steps spent warming up (cosine schedule)")
    p.add_argument("--grad-clip", type=positive_float, default=d.train.grad_clip, help="clip the gradient norm to this value")
    p.add_argument("--ema-decay", type=ema_decay, default=d.train.ema_decay,
                   help="end with a moving average of the weights over about 1/(1-decay) recent steps (default: off, the last step's weights)")
    p.add_argument("--seed", type=non_negative_int, default=d.train.seed, help="seed of the weights, the shuffling and the augmentation")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, ...")
    p.add_argument("--precision", choices=PRECISIONS, default=d.train.precision,
                   help="auto: bf16 autocast where the processor computes bf16 natively (recent CPUs, most GPUs), else fp32; "
                        "fp32; bf16; fp16 (CUDA only)")
    p.add_argument("--no-channels-last", action="store_true", help="keep the NCHW memory layout (default: channels last)")
    p.add_argument("--no-sync-batchnorm", action="store_true",
                   help="under torchrun: per-process BatchNorm statistics (default: synchronised over all processes)")


def config_from_args(args: argparse.Namespace) -> CAEConfig:
    """Build a :class:`CAEConfig` from the parsed ``train``-style arguments."""
    cfg = preset(args.preset, dataset=args.dataset, size=args.size)
    if args.variant:
        cfg.model.variant = args.variant
    cfg.model.latent_dim, cfg.model.width = args.latent_dim, args.width
    cfg.loss.temperature, cfg.loss.recon = args.temperature, args.recon
    cfg.loss.recon_views = getattr(args, "recon_views", cfg.loss.recon_views)
    for name in ("recon_weight", "contrastive_weight", "kl_weight"):
        value = getattr(args, name)
        if value is not None:
            setattr(cfg.loss, name, value)
    cfg.augment.strength = args.augment_strength
    cfg.train.epochs, cfg.train.batch_size, cfg.train.lr = args.epochs, args.batch_size, args.lr
    apply_recipe(cfg, getattr(args, "recipe", "default"))
    if getattr(args, "steps", None) is not None:
        cfg.train.steps = args.steps
    cfg.train.schedule = getattr(args, "schedule", cfg.train.schedule)
    cfg.train.warmup_fraction = getattr(args, "warmup_fraction", cfg.train.warmup_fraction)
    cfg.train.grad_clip = getattr(args, "grad_clip", cfg.train.grad_clip)
    cfg.train.ema_decay = getattr(args, "ema_decay", cfg.train.ema_decay)
    cfg.train.seed, cfg.train.device = args.seed, args.device
    cfg.train.precision = getattr(args, "precision", cfg.train.precision)
    cfg.train.channels_last = not getattr(args, "no_channels_last", False)
    cfg.train.sync_batchnorm = not getattr(args, "no_sync_batchnorm", False)
    return cfg.validate()


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_args(p)
    add_model_args(p)
    p.add_argument("--out", default=None,
                   help="run folder for model.pt and model.json (default: a new folder runs/<dataset>-<preset>-<date-time>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out with the settings saved there (options you type must agree with them)")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out (refused without it)")
    add_progress_arg(p)


def resume_command(argv: list[str], out: Path) -> str:
    """The command line that continues this run: ``train --out OUT --resume``, plus the options that say
    where and how to run (``--data-dir``, ``--device``, ``--no-progress``); the settings come from the checkpoint."""
    kept, i = [], 0
    while i < len(argv):
        arg = argv[i]
        name = arg.split("=", 1)[0]
        if name in ("--data-dir", "--device"):
            kept += [arg] if "=" in arg else argv[i:i + 2]
            i += 1 if "=" in arg else 2
            continue
        if arg == "--no-progress":
            kept.append(arg)
        i += 1
    return "python -m cae_lib " + shlex.join(["train", *kept, "--out", str(out), "--resume"])


#: Options that say how and where to run, not what to train: --resume does not compare them with the checkpoint.
RUN_OPTIONS = ("--out", "--resume", "--overwrite", "--no-progress", "--data-dir", "--device")


def settings_to_resume(typed: CAEConfig, out: Path, argv: list[str]) -> tuple[CAEConfig, dict]:
    """The config that ``--resume`` continues with, the one saved in ``out/model.pt``, and the checkpoint itself.

    A setting whose option was typed on the command line must agree with the checkpoint (a
    :class:`CheckpointError` names every one that does not); the others come from the checkpoint,
    so ``train --out RUN --resume`` is enough. ``--preset`` resets every setting to the preset's,
    so it is refused unless they all agree.

    Raises:
        CheckpointError: ``out/model.pt`` is unreadable, or a typed setting differs from it.
    """
    payload = read_checkpoint(out / "model.pt")
    stored = CAEConfig.from_dict(payload["config"])
    given = {arg.split("=", 1)[0] for arg in argv if arg.startswith("--")} - set(RUN_OPTIONS)
    if "--dataset" in given:
        # Registry names are compared here ("pneumonia" is "pneumoniamnist"); a path is compared by train_cae
        # once the data are loaded, with the data's own fingerprint (the only comparison of the data).
        if not looks_like_path(typed.dataset) and not looks_like_path(stored.dataset):
            typed.dataset = normalize_reference(typed.dataset)
        else:
            given.discard("--dataset")
            stored.dataset = typed.dataset
    differing = differing_settings(stored, typed)
    recipe_keys = {f"train.{name}" for overrides in RECIPES.values() for name in overrides}  # what --recipe sets
    keys = [k for k in differing if cli_option(k) in given or ("--recipe" in given and k in recipe_keys)]
    fix = "leave those options out"
    if "--preset" in given and differing:
        keys, fix = differing, "leave --preset out (it resets every setting to the preset's)"
    if keys:
        raise CheckpointError(
            f"cannot resume {out / 'model.pt'}: it was trained with other settings. " + "; ".join(config_differences(stored, typed, keys=keys))
            + f". --resume continues with the checkpoint's settings: {fix}, or start a new run in another folder."
        )
    stored.train.device = typed.train.device  # where to run is this machine's choice
    return stored, payload


def _saved_epochs(out: Path) -> str | None:
    """How far the checkpoint in ``out`` got ("2 of 9 epochs done"), read from model.pt itself (its
    .json could be an epoch behind, if the disk filled between the two, or edited by hand)."""
    try:
        extra = read_checkpoint(out / "model.pt").get("extra") or {}
    except CheckpointError:
        return None
    return f"{extra.get('epochs_done', '?')} of {extra.get('epochs_total', '?')} epochs done"


def check_precision(args: argparse.Namespace) -> None:
    """fp16 needs CUDA: refuse it elsewhere instead of silently training in fp32."""
    if args.precision == "fp16" and not launched_by_torchrun() and check_device(args.device).type != "cuda":
        raise ValueError(
            f"--precision fp16 needs a CUDA GPU, and this run uses {check_device(args.device)}; it would silently "
            "train in fp32. Use --precision bf16 (if this CPU supports it) or leave the precision at auto."
        )


def run(args: argparse.Namespace) -> int:
    """Train; under ``torchrun`` every process runs this, joined in one DDP group (see cae_lib.distributed).

    One way through: the folder is checked, then locked once (by rank 0); under the lock the
    checkpoint to resume is read and compared with the typed options once, the data are loaded
    once (:func:`~cae_lib.experiment.training_data`), and :func:`~cae_lib.experiment.train_cae` trains.
    """
    cfg = config_from_args(args)
    if not launched_by_torchrun():
        check_device(args.device)  # "--device cuda" without a GPU (or "gpu") stops here, before any folder is made
    check_precision(args)
    if args.resume and not args.out:
        raise ValueError("--resume needs --out, the folder of the run to continue (each run without --out gets a new folder)")
    out = Path(args.out) if args.out else default_run_dir(args.dataset, args.preset)
    check_run_dir(out, resume=args.resume, overwrite=args.overwrite)  # on every rank, before any work
    argv = list(getattr(args, "argv", None) or sys.argv[1:])
    extra_before: dict = {}
    device = init_from_env()
    main_process = True
    try:
        main_process = is_main_process()
        with RunLock(out) if main_process else nullcontext():  # rank 0 writes, so rank 0 locks
            if main_process:  # again, under the lock: another run may have filled the folder since the check above
                check_run_dir(out, resume=args.resume, overwrite=args.overwrite)
            payload = None
            if args.resume:
                cfg, payload = settings_to_resume(cfg, out, argv)
                extra_before = dict(payload.get("extra") or {})
            if launched_by_torchrun() and device.type == "cuda":
                cfg.train.device = str(device)  # one GPU per process
            cfg, train, val = training_data(cfg, args.data_dir)
            if args.overwrite and main_process:
                removed = clear_run_files(out)
                if removed:
                    print(f"--overwrite: removed the earlier run's {', '.join(removed)} from {out}")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", TrainingWarning)
                _model, history, path = train_cae(cfg, train, val, out=out, progress=not args.no_progress, resume_from=payload)
    except KeyboardInterrupt:
        if main_process:
            saved = _saved_epochs(out)
            where = f"the last checkpoint is {out / 'model.pt'} ({saved}); continue with: {resume_command(argv, out)}" if saved else "no epoch finished, nothing was saved"
            print(f"interrupted: {where}", file=sys.stderr)
        return 130
    except TrainingDiverged as err:
        saved = _saved_epochs(out)
        tail = f" The last good checkpoint is {out / 'model.pt'} ({saved})." if saved else " Nothing was saved."
        raise TrainingDiverged(f"{err}{tail}") from err
    except DiskFullError as err:
        saved = _saved_epochs(out) if main_process else None
        tail = (f" The last checkpoint is {out / 'model.pt'} ({saved}); once there is room, continue with: {resume_command(argv, out)}"
                if saved else "")
        raise DiskFullError(f"{err}{tail}") from err
    finally:
        shutdown()
    finished_before = bool(args.resume) and run_finished(extra_before)  # --resume on a finished run trains nothing
    done_before = int(extra_before.get("epochs_done") or 0)
    if not main_process:  # rank 0 reports
        return 0
    last = history[-1] if history else {}
    seconds = sum(h.get("seconds", 0.0) for h in history)
    terms = ", ".join(f"{k} {last[k]:.4f}" for k in ("recon", "contrastive", "kl", "top1", "val_loss") if k in last)
    if finished_before:
        print(f"nothing to resume: the run in {out} had already finished ({len(history)} of {len(history)} epochs), so nothing was trained. "
              f"It trained {cfg.model_name} on {cfg.dataset} in {seconds:.1f} s ({terms})")
    elif done_before:
        more = len(history) - done_before
        print(f"resumed after epoch {done_before}: trained {cfg.model_name} on {cfg.dataset} for {more} more {'epoch' if more == 1 else 'epochs'} "
              f"({len(history)} in all) in {sum(h.get('seconds', 0.0) for h in history[done_before:]):.1f} s ({terms})")
    else:
        print(f"trained {cfg.model_name} on {cfg.dataset} for {len(history)} {'epoch' if len(history) == 1 else 'epochs'} in {seconds:.1f} s ({terms})")
    if cfg.train.ema_decay:
        print(f"the saved model is the moving average of the weights (--ema-decay {cfg.train.ema_decay:g}); the losses above describe "
              "the last step's weights")
    for w in caught:
        if issubclass(w.category, TrainingWarning):
            warn(str(w.message))
    print(f"checkpoint: {path}  (config: {path.with_suffix('.json')})" if path else "checkpoint: not saved (no --out)")
    return 0

