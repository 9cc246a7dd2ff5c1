"""Command-line options shared by several commands, their value checks, and the help layout.

Every option has a help text that shows its default (:class:`HelpFormatter`); numbers that must
be positive are checked by argparse itself (:func:`positive_int`, ...), so a wrong value is a
one-line usage error before anything runs.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from cae_lib.config import IMAGE_SIZES


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions as written, and appends ``(default: X)`` to every option that has a default.

    Options whose default is ``None`` or ``False`` say in their own words what happens when they
    are left out (``None`` and ``False`` mean nothing to a reader).
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False or action.default == argparse.SUPPRESS or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def _number(text: str, kind: type, test, what: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not test(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    return _number(text, int, lambda v: v >= 1, "a whole number of at least 1")


def batch_size(text: str) -> int:
    """argparse type: a batch size, at least 2 (NT-Xent compares the images of a batch)."""
    return _number(text, int, lambda v: v >= 2, "a batch size of at least 2 (a batch needs two images to compare)")


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0 (seeds)."""
    return _number(text, int, lambda v: 0 <= v < 2**32, "a whole number from 0 to 2**32 - 1")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "a positive number")


def temperature(text: str) -> float:
    """argparse type: an NT-Xent temperature, a finite number above 0.01 (below, the softmax overflows)."""
    return _number(text, float, lambda v: math.isfinite(v) and v > 0.01,
                   "a temperature above 0.01 (SimCLR used 0.1 to 1; the default is 0.2)")


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0 (loss weights)."""
    return _number(text, float, lambda v: math.isfinite(v) and v >= 0, "a number of at least 0")


def fraction(text: str) -> float:
    """argparse type: a number in (0, 1]."""
    return _number(text, float, lambda v: 0 < v <= 1, "a fraction between 0 (excluded) and 1")


def warmup_fraction(text: str) -> float:
    """argparse type: a number in [0, 1) (the share of steps spent warming up)."""
    return _number(text, float, lambda v: 0 <= v < 1, "a fraction of at least 0 and below 1")


def ema_decay(text: str) -> float:
    """argparse type: a weight-average decay in (0, 1)."""
    return _number(text, float, lambda v: 0 < v < 1, "a decay between 0 and 1, both excluded (0.95 averages about the last 20 steps)")


DATASET_HELP = ("a MedMNIST name (e.g. pneumoniamnist; list them with `datasets`), 'digits', a folder with one "
                "sub-folder per class, or an .npz file in MedMNIST layout")

CHECKPOINT_DATA_HELP = ("the data to use (default: the data the checkpoint was trained on, found from any folder); give it "
                        "when that data has moved")


def add_data_args(p: argparse.ArgumentParser, dataset_default: str | None = "pneumoniamnist", size: bool = True,
                  dataset_help: str = DATASET_HELP) -> None:
    """``--dataset``, ``--data-dir`` and (unless ``size=False``) ``--size``: which images a command reads."""
    p.add_argument("--dataset", default=dataset_default, help=dataset_help)
    add_data_dir_arg(p)
    if size:
        p.add_argument("--size", type=int, default=28, choices=IMAGE_SIZES, help="image size in pixels")


def data_dir_value(value: str) -> str:
    """``--data-dir`` must name a folder (or one to create): a file is refused whatever the dataset."""
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{value} is a file, not a folder: --data-dir names the folder that holds the MedMNIST .npz files "
            f"(to use a single .npz of your own, pass it as --dataset {value})"
        )
    return value


def add_data_dir_arg(p: argparse.ArgumentParser) -> None:
    """``--data-dir``: the folder with the MedMNIST .npz files."""
    p.add_argument("--data-dir", default=None, type=data_dir_value,
                   help="folder with the MedMNIST .npz files (default: $CAE_DATA_DIR, else ~/.cache/cae_lib/medmnist)")


def add_overwrite_arg(p: argparse.ArgumentParser, what: str = "existing output files") -> None:
    """``--overwrite``: allow replacing what an earlier run wrote."""
    p.add_argument("--overwrite", action="store_true", help=f"replace {what} (refused without it)")


def add_progress_arg(p: argparse.ArgumentParser) -> None:
    """``--no-progress``: no progress bars (e.g. in logs)."""
    p.add_argument("--no-progress", action="store_true", help="do not show progress bars (step messages still show)")
