"""``python -m cae_lib datasets``: list every dataset and whether its files are on disk."""

from __future__ import annotations

import argparse

from cae_lib.commands.options import add_data_dir_arg
from cae_lib.data import format_dataset_table, list_datasets, resolve_data_dir
from cae_lib.data.paths import check_data_dir

HELP = "list datasets and local availability"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_dir_arg(p)


def run(args: argparse.Namespace) -> int:
    folder = check_data_dir(resolve_data_dir(args.data_dir))
    print(f"data folder: {folder}" + ("" if folder.exists() else "  (it does not exist yet: a typo? It is made on the first download)"))
    print(format_dataset_table(list_datasets(args.data_dir)))
    return 0
