"""Command-line interface: python -m cae_lib COMMAND ... (also installed as cae-lib).

Commands:

  datasets           list every dataset and whether it is available locally
  train              train a CAE (or any ablation) and save a checkpoint + config JSON
  evaluate           cluster and probe one checkpoint on the official test split
  benchmark          every method of the comparison table, over several seeds
  sample             decode new labelled images from the latent space
  augment-benchmark  do generated images help a classifier with few labels?
  demo               the main job: load or train, cluster, evaluate, write a report folder

Every command that reads MedMNIST takes --data-dir (else $CAE_DATA_DIR, else ~/.cache/cae_lib/medmnist).
`python -m cae_lib COMMAND --help` lists a command's options and their defaults.

Problems you can fix (a missing file, a bad option, a folder in use, ...) end with one line saying
what is wrong and what to do, and exit code 2; set CAE_DEBUG=1 to see the traceback as well.
Ctrl-C exits with code 130. PyTorch uses CAE_NUM_THREADS threads (default: the cores this process
may use, within the container's CPU quota). CAE_MEMORY_BUDGET_MB (default 512) is the memory a data
split, or the images `sample` makes, may take.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from cae_lib.commands import augment_benchmark, benchmark, datasets, demo, evaluate, sample, train
from cae_lib.commands.options import HelpFormatter
from cae_lib.machine import check_environment, configure_threads

#: Problems a user can fix from the message alone: one line, no traceback (CAE_DEBUG=1 shows it).
EXPECTED_ERRORS = (ValueError, RuntimeError, OSError)

# Every command, in the order ``--help`` lists them: name -> module with HELP, add_arguments, run.
COMMANDS = {
    "datasets": datasets,
    "train": train,
    "evaluate": evaluate,
    "benchmark": benchmark,
    "sample": sample,
    "augment-benchmark": augment_benchmark,
    "demo": demo,
}


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m cae_lib`` parser: one subparser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="python -m cae_lib", description=__doc__, formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.HELP, description=command.HELP[0].upper() + command.HELP[1:] + ("" if command.HELP.endswith(("?", ".", "!")) else "."),
                           formatter_class=HelpFormatter, allow_abbrev=False)  # "--ema" must not pass for "--ema-decay" unseen
        command.add_arguments(p)
        p.set_defaults(func=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the command line), run the command, return its exit code.

    0: done; 2: a problem the message explains (or a usage error); 130: interrupted (Ctrl-C).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    args.argv = argv  # so a command can print the line that repeats or resumes it
    debug = bool(os.environ.get("CAE_DEBUG"))
    try:
        check_environment()  # a wrong CAE_NUM_THREADS or CAE_MEMORY_BUDGET_MB stops every command at once
        configure_threads()
        return args.func(args)
    except BrokenPipeError:  # `python -m cae_lib ... | head`: the reader has gone, nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted (Ctrl-C); files are only ever replaced whole, so nothing was left half-written", file=sys.stderr)
        return 130
    except EXPECTED_ERRORS as exc:
        # Known, user-facing problems: print the message (it names the fix), not a traceback.
        if debug:
            raise
        print(f"error: {exc}\n(set CAE_DEBUG=1 to see the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
