"""The steps every course notebook shares, one call each.

A notebook cell should read as a step of the story, not as plumbing. The plumbing the six
notebooks have in common lives here:

=================================  ===============================================================
call                               what it does
=================================  ===============================================================
:func:`load_course_data`           the official train / val / test splits, plus the images models
                                   are fitted on; FAST mode shrinks them (see :data:`FAST_SIZES`)
:func:`cae_config`                 the CAE config from the data and the notebook's parameters
:func:`load_or_train_cae`          the shipped / saved checkpoint when its config matches, else
                                   train (FAST mode: a throw-away model, never saved)
:func:`quick_train`                a throw-away model on a few images, for a quick comparison
:func:`runs_dir`                   where notebooks save the models they train (git-ignored)
:func:`balance_table`,             the two tables the notebooks show most: class counts with the
:func:`subgroup_table`             majority-class floor, and the subgroups of an over-clustering
:func:`committed_results`          a committed benchmark's table and figures (or how to make them)
=================================  ===============================================================

Example (the first cells of notebook 4)::

    train, val, test, fit = load_course_data("pneumoniamnist", seed=0, fast=False)
    cfg = cae_config(train, "pneumoniamnist", latent_dim=32, temperature=0.2, seed=0)
    model, history, where = load_or_train_cae(cfg, fit, val, out=runs_dir() / "pneumoniamnist_cae")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

from IPython.display import Image, Markdown

from cae_lib.config import CAEConfig, preset
from cae_lib.data import ImageData, load_dataset
from cae_lib.data.registry import is_registered
from cae_lib.experiment import config_for_data, load_or_train, train_cae
from cae_lib.tables import MarkdownTable, markdown_table
from cae_lib.plots.axes import class_name

#: FAST mode (the automated tests run every notebook with ``FAST = True``): models are fitted on
#: ``train`` images for ``epochs`` epoch(s), and val / test keep ``eval`` images. Numbers mean nothing then.
FAST_SIZES = {"train": 256, "eval": 200, "epochs": 1}

#: The root of a source checkout (``<root>/cae_lib/course.py``); used only to shorten printed paths.
_ROOT = Path(__file__).resolve().parents[1]


class CourseData(NamedTuple):
    """The splits a notebook works with (all uint8 :class:`~cae_lib.data.ImageData`).

    Attributes:
        train: the whole official train split (N_train images).
        val, test: the official splits; FAST mode keeps a seeded sample of ``FAST_SIZES["eval"]``.
        fit: the training images models are fitted on: ``train`` itself, or a seeded sample of
            ``FAST_SIZES["train"]`` in FAST mode.
    """

    train: ImageData
    val: ImageData
    test: ImageData
    fit: ImageData


def load_course_data(dataset: str | Path, data_dir: str | Path | None = None, seed: int = 0, fast: bool = False) -> CourseData:
    """Load the three official splits of ``dataset`` (a MedMNIST name, ``"digits"``, a folder or an .npz).

    Unpacks as ``train, val, test, fit = load_course_data(...)``. The data folder is resolved as in
    :func:`cae_lib.data.load_dataset`: ``data_dir``, then ``$CAE_DATA_DIR``, then the default cache.
    """
    train, val, test = (load_dataset(str(dataset), split=s, data_dir=data_dir) for s in ("train", "val", "test"))
    n_fit, n_eval = (FAST_SIZES["train"], FAST_SIZES["eval"]) if fast else (None, None)
    return CourseData(train, val.sample(n_eval, seed), test.sample(n_eval, seed), train.sample(n_fit, seed))


def runs_dir() -> Path:
    """``runs/notebooks`` at the repository root (git-ignored): notebooks save trained models there,
    so the next notebook finds them. Relative to the working directory, as printed paths should be."""
    return (Path("..") if Path.cwd().name == "notebooks" else Path(".")) / "runs" / "notebooks"


def cae_config(
    data: ImageData,
    dataset: str | Path | None = None,
    preset_name: str = "cae",
    latent_dim: int | None = None,
    temperature: float | None = None,
    epochs: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    fast: bool = False,
) -> CAEConfig:
    """The config of a model for ``data``: a :func:`~cae_lib.config.preset`, with the image size and
    channels of the data, and the notebook's parameters.

    Args:
        data: any split; gives channels, image size and dataset name.
        dataset: what the notebook loaded; a folder or .npz path is stored in the config so that
            training can reload it (a MedMNIST name is already known from ``data``).
        latent_dim, temperature, batch_size: ``None`` keeps the library default.
        epochs: ``None`` is the library default (enough epochs for a fixed number of steps).
        fast: FAST mode: ``FAST_SIZES["epochs"]`` epoch(s) whatever ``epochs`` says.
    """
    cfg = config_for_data(preset(preset_name), data)
    if latent_dim is not None:
        cfg.model.latent_dim = latent_dim
    if temperature is not None:
        cfg.loss.temperature = temperature
    if batch_size is not None:
        cfg.train.batch_size = batch_size
    cfg.train.epochs, cfg.train.seed = (FAST_SIZES["epochs"] if fast else epochs), seed
    if dataset is not None and not is_registered(str(dataset)):
        cfg.dataset = str(dataset)
    return cfg


def load_or_train_cae(
    config: CAEConfig,
    fit: ImageData,
    val: ImageData | None = None,
    out: str | Path | None = None,
    fast: bool = False,
    retrain: bool = False,
) -> tuple[Any, list[dict[str, float]], str]:
    """"Load the pretrained checkpoint if it exists, else train", for the model ``config`` describes.

    Looks for the shipped checkpoint with exactly this config and data, then ``out/model.pt``;
    trains on ``fit`` (the notebook's train split), validating on ``val``, and saves to ``out``
    when neither matches or ``retrain`` is set (:func:`cae_lib.experiment.load_or_train`). The
    splits are the ones the notebook loaded: nothing is reloaded by name. In FAST mode it trains
    a throw-away model on ``fit`` and saves nothing.

    Returns:
        ``(model in eval mode, history: one dict of logged values per epoch, where: a sentence
        saying which model this is)``.
    """
    if fast:
        model, history, where = quick_train(config, fit)
        return model, history, f"{where} (FAST mode)"
    model, history, where = load_or_train(config, fit, val, out=out, retrain=retrain)
    return model, history, where.replace(f"{_ROOT}/", "")


def quick_train(config: CAEConfig, data: ImageData, progress: bool = False) -> tuple[Any, list[dict[str, float]], str]:
    """Train the model ``config`` describes on ``data`` (no validation) and save nothing: a throw-away
    model for a quick comparison or a FAST run. Returns ``(model in eval mode, history, where)``."""
    model, history, _ = train_cae(config, data, progress=progress)
    return model, history, f"trained on {len(data)} images for {len(history)} epoch(s), not saved"


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------
def balance_table(balance: Mapping[str, Mapping[str, Any]], class_names: Sequence[str]) -> MarkdownTable:
    """Images per class in each split, with the majority-class floor in bold.

    Args:
        balance: :func:`cae_lib.data.class_balance` output, ``{split: {"n", "counts", "majority_floor"}}``.
    """
    rows = []
    for split, b in balance.items():
        counts = {name: int(c) for name, c in zip(class_names, b["counts"])}
        rows.append({"split": split, "n": b["n"], **counts, "majority-class floor": f"**{b['majority_floor']:.3f}**"})
    return markdown_table(rows)


def subgroup_table(subgroups: Sequence[Mapping[str, Any]], class_names: Sequence[str]) -> MarkdownTable:
    """One row per cluster of :func:`cae_lib.cluster.subgroup_report`: size, majority label, purity, label counts."""
    rows = []
    for g in subgroups:
        counts = ", ".join(f"{class_name(label, class_names)}: {n}" for label, n in (g["label_counts"] or {}).items())
        majority = class_name(g["majority_label"], class_names) if g["majority_label"] is not None else None
        rows.append({"subgroup": f"c{g['cluster']}", "size": g["size"], "majority label": majority,
                     "purity": f"{g['purity']:.0%}", "label counts": counts})
    return markdown_table(rows)


# --------------------------------------------------------------------------------------------
# Committed results
# --------------------------------------------------------------------------------------------
_RESULTS = {
    "benchmark": {
        "files": ("{d}_benchmark.md", "{d}_benchmark.png", "{d}_label_efficiency.png"),
        "missing": "> **No committed benchmark for `{d}` yet** (`{d}_benchmark.md` is not in `benchmarks/results/`). "
                   "Create it with `python -m cae_lib benchmark --dataset {d} --seeds 3` (tens of minutes on a CPU). "
                   "Meanwhile, the live runs below show every method on one seed.",
    },
    "augment": {
        "files": ("{d}_augment.md", "{d}_augment.png"),
        "missing": "> **No committed augmentation benchmark for `{d}` yet** (`{d}_augment.md` is not in `benchmarks/results/`). "
                   "Run `python -m cae_lib augment-benchmark --dataset {d}` to measure whether generated images help a "
                   "classifier trained with few labels. Until then, treat the samples above as a visual demonstration only.",
    },
}


def committed_results(folder: str | Path, dataset: str, kind: str = "benchmark") -> list[Any]:
    """What ``python -m cae_lib benchmark`` (``kind="benchmark"``) or ``augment-benchmark``
    (``kind="augment"``) committed for ``dataset`` in ``folder`` (``cae_lib.comparison.BENCHMARK_DIR``):
    its Markdown table (title line dropped) and figures, ready for ``display(*committed_results(...))``;
    a note saying how to make them when they are missing.
    """
    if kind not in _RESULTS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {sorted(_RESULTS)}")
    folder = Path(folder)
    table, *figures = (folder / name.format(d=dataset) for name in _RESULTS[kind]["files"])
    shown: list[Any] = []
    if table.exists():
        text = table.read_text()
        shown.append(Markdown(text.split("\n", 1)[1] if text.startswith("# ") else text))
    elif table.with_suffix(".json").exists():  # an older run wrote only the JSON: show its conclusion
        conclusion = json.loads(table.with_suffix(".json").read_text()).get("conclusion", "not stated")
        shown.append(Markdown(f"**Conclusion (from `{table.with_suffix('.json').name}`):** {conclusion}"))
    else:
        return [Markdown(_RESULTS[kind]["missing"].format(d=dataset))]
    shown += [Image(filename=str(png), width=720) for png in figures if png.exists()]
    return shown
