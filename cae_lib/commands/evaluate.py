"""``python -m cae_lib evaluate``: cluster and probe one checkpoint on the official test split.

The data is the data the checkpoint was trained on, found from any working directory (its
recorded name or absolute path), and checked against the recorded fingerprint: a checkpoint is
never scored on other data that merely has the same name. ``--dataset`` points elsewhere when
the data moved; other data is refused with a message naming both.
"""

from __future__ import annotations

import argparse

from cae_lib.checkpoint import CheckpointError, check_data_matches, checkpoint_dataset, load_checkpoint
from cae_lib.commands.options import CHECKPOINT_DATA_HELP, add_data_args, add_overwrite_arg, non_negative_int
from cae_lib.commands.outputs import check_output_file, checkpoint_to_read, notes_for, step, warn
from cae_lib.config import IMAGE_SIZES
from cae_lib.data.provenance import describe
from cae_lib.evaluate import EvalConfig, evaluate_model, format_metrics, load_splits
from cae_lib.files import write_json

HELP = "evaluate one checkpoint on the official test split"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a model.pt written by `train`, or its run folder")
    add_data_args(p, dataset_default=None, size=False, dataset_help=CHECKPOINT_DATA_HELP)
    p.add_argument("--size", type=int, default=None, choices=IMAGE_SIZES,
                   help="image size; must be the checkpoint's own (default: the checkpoint's)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the clusterers and the probes")
    p.add_argument("--json", default=None, help="also write the metrics to this JSON file (default: print only)")
    add_overwrite_arg(p, "an existing --json file")


def run(args: argparse.Namespace) -> int:
    path = checkpoint_to_read(args.checkpoint)
    json_path = check_output_file(args.json, "--json", inputs=[path, path.with_suffix(".json")], overwrite=args.overwrite, example="metrics.json") if args.json else None
    with step(f"loading the checkpoint {path}"):
        model, cfg, payload = load_checkpoint(path)
    if args.size is not None and args.size != cfg.size:
        raise CheckpointError(f"--size {args.size}, but the checkpoint {path} was trained on {cfg.size} px images; a model works at its own size only. Drop --size.")
    dataset = checkpoint_dataset(path, cfg, payload, args.dataset)
    with step(f"loading {dataset} (train, val and test splits)"):
        splits = load_splits(dataset, args.data_dir, cfg.size)
    check_data_matches(path, cfg, payload, splits["train"])
    empty = [name for name, split in splits.items() if len(split) == 0]
    if empty:
        raise ValueError(f"the {' and '.join(empty)} split of {dataset} is empty; evaluation needs images in train, val and test")
    for message in notes_for(path, payload):
        warn(message)
    n = sum(len(d) for d in splits.values())
    has_projection = cfg.loss.contrastive_weight > 0
    features = EvalConfig().cluster_features if has_projection else "chosen on val"
    with step(f"embedding {n} images, then {EvalConfig().method} clustering (k = {splits['train'].n_classes}; features: {features}; "
              "and every other clusterer on the same codes), kNN and linear probes (the longest step: seconds for PneumoniaMNIST on a CPU)"):
        result = evaluate_model(model, splits, seed=args.seed, has_projection=has_projection)
    result.update(
        dataset=dataset,
        checkpoint=str(path),
        seed=args.seed,
        train_config=cfg.to_dict(),
        train_seconds=payload.get("extra", {}).get("train_seconds"),
        data=describe(splits["train"]),
    )
    print(format_metrics(result))
    if json_path is not None:
        write_json(json_path, result)
        print(f"metrics written to {json_path}")
    return 0

