"""Train and package the shipped checkpoints (run by a maintainer, not by CI).

For each dataset: run the exact CLI command below, copy the weights without the optimizer state
into ``cae_lib/pretrained/<dataset>_cae.pt`` (+ ``.json`` config), evaluate it on the official
test split and write a model card ``<dataset>_cae.md`` with the command, seed, training seconds
and headline metrics.

Usage: CAE_DATA_DIR=../shared/data/medmnist python tools/make_pretrained.py pneumoniamnist breastmnist

``--evaluate-only`` keeps the shipped weights (for a change of the evaluation protocol, not of
training) and rewrites only the metrics and the model card.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

from cae_lib.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from cae_lib.evaluate import CLUSTERER_NAMES, evaluate_checkpoint
from cae_lib.experiment import pretrained_path
from cae_lib.files import write_text

SEED = 0


def make(dataset: str, evaluate_only: bool = False) -> None:
    run_dir = Path("runs") / f"pretrained_{dataset}"
    shown = f"python -m cae_lib train --dataset {dataset} --seed {SEED} --out {run_dir}"
    dest = pretrained_path(dataset)
    if evaluate_only:  # the shipped weights and their training record stay as they are
        payload = read_checkpoint(dest)
        cfg, extra = load_checkpoint(dest)[1], payload["extra"]
    else:
        cmd = [sys.executable, "-m", "cae_lib", "train", "--dataset", dataset, "--seed", str(SEED), "--out", str(run_dir), "--no-progress"]
        print("$", shown, flush=True)
        if "--reuse" in sys.argv and (run_dir / "model.pt").exists():
            print(f"(reusing the finished run in {run_dir})")
        else:
            subprocess.run(cmd, check=True)
        payload = read_checkpoint(run_dir / "model.pt")
        model, cfg, _ = load_checkpoint(run_dir / "model.pt")
        extra = dict(payload["extra"], command=shown, machine=f"{platform.machine()}, {os.cpu_count()} CPU cores", date=date.today().isoformat())
        save_checkpoint(dest, model, cfg, payload["history"], trainer_state=None, extra=extra)
    metrics = evaluate_checkpoint(dest, seed=SEED, json_path=dest.with_name(dest.stem + "_metrics.json"))
    last = payload["history"][-1]
    first = payload["history"][0]
    size_mb = dest.stat().st_size / 2**20
    card = f"""# Model card: `{dest.name}`

Default-config contrastive autoencoder (CAE) for **{metrics['dataset']}** (28 x 28, {cfg.model.in_channels} channel(s)),
shipped so that the notebooks and the main job need no training.

- Command: `{shown}` (then copied without the optimizer state by `tools/make_pretrained.py`)
- Seed: {SEED}; config: `{dest.with_suffix('.json').name}` (every setting); library version {payload['version']}
- Training: {len(payload['history'])} epochs ({cfg.train.schedule} learning-rate schedule, {cfg.train.precision} precision) in **{extra['train_seconds']:.0f} s** on {extra['machine']} ({extra['date']}), peak memory {extra['peak_memory_mb']:.0f} MB.
  {"This run shared the 2 cores with other jobs (load average " + os.environ["CAE_LOAD_NOTE"] + "); the idle-machine throughput is in `benchmarks/results/speed.md`." if os.environ.get("CAE_LOAD_NOTE") else ""}
- Training curve: reconstruction MSE {first.get('recon', float('nan')):.4f} -> {last.get('recon', float('nan')):.4f}; positive-pair top-1 {first.get('top1', float('nan')):.3f} -> {last.get('top1', float('nan')):.3f}
- File size: {size_mb:.2f} MB

## Headline metrics (official test split, n = {metrics['n_test']}, this checkpoint alone)

| metric | value |
|---|---|
| Hungarian accuracy, {CLUSTERER_NAMES[metrics['cluster_method']]} k = {metrics['n_classes']} (features: {metrics['cluster_features']}, {"the protocol's fixed choice" if metrics['eval_config'].get('cluster_features') else "chosen on val"}) | {metrics['hungarian_acc']:.3f} |
| Hungarian accuracy of every clusterer on the same codes | {", ".join(f"{CLUSTERER_NAMES[m]} {a:.3f}" for m, a in metrics['hungarian_by_method'].items())} |
| NMI / ARI | {metrics['nmi']:.3f} / {metrics['ari']:.3f} |
| kNN accuracy (k = {metrics['knn_k']}, cosine) | {metrics['knn_acc']:.3f} |
| linear probe accuracy, class-balanced / unweighted (C chosen on val) | {metrics['linear_acc']:.3f} / {metrics['linear_unweighted_acc']:.3f} |
| majority-vote accuracy at K = {metrics['paper_k']} (the paper's metric; rises with K) | {metrics[f"majority_vote_acc_k{metrics['paper_k']}"]:.3f} |
| majority-class floor | {metrics['majority_floor']:.3f} |

Mean ± sd over seeds, and every baseline: `benchmarks/results/{metrics['dataset']}_benchmark.md`.
"""
    write_text(dest.with_suffix(".md"), card)
    print(card)


if __name__ == "__main__":
    for name in [a for a in sys.argv[1:] if not a.startswith("--")] or ["pneumoniamnist", "breastmnist"]:
        make(name, evaluate_only="--evaluate-only" in sys.argv)
