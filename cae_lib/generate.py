"""Kept for old imports: the ``sample`` command lives in :mod:`cae_lib.commands.sample`."""

from cae_lib.commands.sample import SAMPLERS, make_sampler, sample_to_files

__all__ = ["SAMPLERS", "make_sampler", "sample_to_files"]
