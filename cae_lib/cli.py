"""Command-line interface: ``python -m cae_lib COMMAND ...`` (also installed as ``cae-lib``).

Commands:

* ``datasets``           list every dataset and whether it is available locally
* ``train``              train a CAE (or any ablation) and save a checkpoint + config JSON
* ``evaluate``           cluster and probe one checkpoint on the official test split
* ``benchmark``          every method of the comparison table, over several seeds
* ``sample``             decode new labelled images from the latent space
* ``augment-benchmark``  do generated images help a classifier with few labels?
* ``demo``               the main job: load or train, cluster, evaluate, write a report folder

Every command that reads MedMNIST takes ``--data-dir`` (else ``$CAE_DATA_DIR``, else the cache).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from cae_lib.config import CAEConfig, preset


def _add_data_args(p: argparse.ArgumentParser, dataset_default: str | None = "pneumoniamnist") -> None:
    p.add_argument("--dataset", default=dataset_default, help="MedMNIST name (e.g. pneumoniamnist), 'digits', a folder or an .npz")
    p.add_argument("--data-dir", default=None, help="folder with the .npz files (default: $CAE_DATA_DIR, then ~/.cache/cae_lib/medmnist)")
    p.add_argument("--size", type=int, default=28, help="image size: 28 (default) or 64")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    d = CAEConfig()
    p.add_argument("--preset", default="cae", choices=["cae", "ae", "contrastive", "vae", "cvae"], help="which ablation (default: cae)")
    p.add_argument("--variant", choices=["ae", "vae"], default=None, help="override the preset's variant")
    p.add_argument("--latent-dim", type=int, default=d.model.latent_dim)
    p.add_argument("--width", type=int, default=d.model.width)
    p.add_argument("--temperature", type=float, default=d.loss.temperature)
    p.add_argument("--recon-weight", type=float, default=None)
    p.add_argument("--contrastive-weight", type=float, default=None)
    p.add_argument("--kl-weight", type=float, default=None)
    p.add_argument("--recon", choices=["mse", "bce"], default=d.loss.recon)
    p.add_argument("--augment-strength", type=float, default=d.augment.strength)
    p.add_argument("--epochs", type=int, default=d.train.epochs, help=f"default: enough epochs for {d.train.steps} optimisation steps (15 on PneumoniaMNIST)")
    p.add_argument("--batch-size", type=int, default=d.train.batch_size)
    p.add_argument("--lr", type=float, default=d.train.lr)
    p.add_argument("--seed", type=int, default=d.train.seed)
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, ...")
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")


def config_from_args(args: argparse.Namespace) -> CAEConfig:
    """Build a :class:`CAEConfig` from the parsed ``train``-style arguments."""
    cfg = preset(args.preset, dataset=args.dataset, size=args.size)
    if args.variant:
        cfg.model.variant = args.variant
    cfg.model.latent_dim, cfg.model.width = args.latent_dim, args.width
    cfg.loss.temperature, cfg.loss.recon = args.temperature, args.recon
    for name in ("recon_weight", "contrastive_weight", "kl_weight"):
        value = getattr(args, name)
        if value is not None:
            setattr(cfg.loss, name, value)
    cfg.augment.strength = args.augment_strength
    cfg.train.epochs, cfg.train.batch_size, cfg.train.lr = args.epochs, args.batch_size, args.lr
    cfg.train.seed, cfg.train.device, cfg.train.amp = args.seed, args.device, args.amp
    return cfg.validate()


def cmd_datasets(args: argparse.Namespace) -> int:
    from cae_lib.data import format_dataset_table, list_datasets, resolve_data_dir

    print(f"data folder: {resolve_data_dir(args.data_dir)}")
    print(format_dataset_table(list_datasets(args.data_dir)))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from cae_lib.experiment import train_cae

    cfg = config_from_args(args)
    model, history, path = train_cae(cfg, out=args.out, data_dir=args.data_dir, progress=not args.no_progress, resume=args.resume)
    last = history[-1] if history else {}
    seconds = sum(h.get("seconds", 0.0) for h in history)
    terms = ", ".join(f"{k} {last[k]:.4f}" for k in ("recon", "contrastive", "kl", "top1", "val_loss") if k in last)
    print(f"trained {cfg.model_name} on {cfg.dataset} for {len(history)} epochs in {seconds:.1f} s ({terms})")
    print(f"checkpoint: {path}  (config: {path.with_suffix('.json')})" if path else "checkpoint: not saved (no --out)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cae_lib.evaluate import evaluate_checkpoint, format_metrics

    result = evaluate_checkpoint(args.checkpoint, dataset=args.dataset, data_dir=args.data_dir, seed=args.seed, json_path=args.json)
    print(format_metrics(result))
    if args.json:
        print(f"metrics written to {args.json}")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from cae_lib.benchmark import run_benchmark

    run_benchmark(
        dataset=args.dataset,
        seeds=args.seeds,
        out=args.out,
        data_dir=args.data_dir,
        methods=args.methods,
        epochs=args.epochs,
        progress=not args.no_progress,
    )
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from cae_lib.generate import sample_to_files

    sample_to_files(
        checkpoint=args.checkpoint,
        n=args.n,
        label=args.label,
        out=args.out,
        npz=args.npz,
        sampler=args.sampler,
        seed=args.seed,
        scale=args.scale,
        data_dir=args.data_dir,
    )
    return 0


def cmd_augment_benchmark(args: argparse.Namespace) -> int:
    from cae_lib.augment_benchmark import run_augment_benchmark

    run_augment_benchmark(
        dataset=args.dataset,
        fractions=args.fractions,
        seeds=args.seeds,
        out=args.out,
        data_dir=args.data_dir,
        n_generated=args.n_generated,
        checkpoint=args.checkpoint,
        progress=not args.no_progress,
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from cae_lib.report import run_demo

    run_demo(dataset=args.dataset, out=args.out, data_dir=args.data_dir, retrain=args.retrain, progress=not args.no_progress)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cae_lib", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("datasets", help="list datasets and local availability")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("train", help="train a CAE and save a checkpoint")
    _add_data_args(p)
    _add_model_args(p)
    p.add_argument("--out", default="runs/cae", help="output folder (model.pt + model.json); default runs/cae")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT/model.pt")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate one checkpoint on the official test split")
    p.add_argument("--checkpoint", required=True)
    _add_data_args(p, dataset_default=None)
    p.add_argument("--seed", type=int, default=0, help="seed of k-means and the probes")
    p.add_argument("--json", default=None, help="write the metrics to this JSON file")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("benchmark", help="every method of the comparison table over several seeds")
    _add_data_args(p)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--methods", nargs="*", default=None, help="subset of methods (default: all)")
    p.add_argument("--epochs", type=int, default=None, help="override the CAE epochs (default: the config default)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("sample", help="decode new labelled images from the latent space")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--label", type=int, default=None, help="class to sample (default: all classes in proportion)")
    p.add_argument("--sampler", default="class-gmm", choices=["class-gmm", "gaussian", "prior"])
    p.add_argument("--scale", type=float, default=1.0, help="temperature: multiplies the spread around each mean")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="samples.png", help="PNG image grid")
    p.add_argument("--npz", default=None, help="also save the samples as a MedMNIST-layout .npz")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("augment-benchmark", help="do generated images help a low-label classifier?")
    _add_data_args(p)
    p.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.05, 0.2])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--n-generated", type=int, default=None, help="generated images per run (default: as many as the real subset, at least 200)")
    p.add_argument("--checkpoint", default=None, help="CAE checkpoint to sample from (default: the shipped one)")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_augment_benchmark)

    p = sub.add_parser("demo", help="the main job: load or train, cluster, evaluate, write a report")
    p.add_argument("--dataset", default=None, help="default: pneumoniamnist if available, else digits")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default="report")
    p.add_argument("--retrain", action="store_true", help="train even when a matching checkpoint exists")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        # Known, user-facing problems: print the message (it names the fix), not a traceback.
        if os.environ.get("CAE_DEBUG"):
            raise
        print(f"error: {exc}\n(set CAE_DEBUG=1 to see the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
