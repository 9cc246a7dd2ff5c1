"""One module per ``python -m cae_lib`` command, named after it.

Each module holds the command's job and its argparse wiring: ``HELP`` (the one-line help shown by
``python -m cae_lib --help``), ``add_arguments(parser)`` and ``run(args) -> exit code``.
:mod:`cae_lib.cli` only dispatches to them.

- ``datasets``           :mod:`cae_lib.commands.datasets`
- ``train``              :mod:`cae_lib.commands.train`
- ``evaluate``           :mod:`cae_lib.commands.evaluate`
- ``benchmark``          :mod:`cae_lib.commands.benchmark`; each row runs in a process of its own
                         (:mod:`cae_lib.commands.benchmark_worker`); the rows are :mod:`cae_lib.comparison`
- ``sample``             :mod:`cae_lib.commands.sample`
- ``augment-benchmark``  :mod:`cae_lib.commands.augment_benchmark`
- ``demo``               :mod:`cae_lib.commands.demo`

Options shared by several commands, their value checks and the help layout live in
:mod:`cae_lib.commands.options`; the checks every output path passes before any work starts, and
the step messages, in :mod:`cae_lib.commands.outputs`. Nothing here is
imported by the core modules, and this package imports none of its modules (so that
``python -m cae_lib.commands.benchmark_worker`` loads only what one row needs).
"""
