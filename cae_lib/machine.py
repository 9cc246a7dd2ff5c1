"""What this machine offers a run: the device it asks for, CPU threads (cgroup quotas,
``CAE_NUM_THREADS``), the environment variables cae-lib reads, and the peak memory a process used."""

from __future__ import annotations

import math
import os
import resource
import sys
from pathlib import Path

import torch

from cae_lib.utils import pick_device

THREADS_ENV_VAR = "CAE_NUM_THREADS"


def cpu_quota(cgroup_root: str | os.PathLike = "/sys/fs/cgroup") -> float | None:
    """The CPU quota of this process's container in cores (e.g. 1.0 or 2.5), or None when unlimited.

    Reads cgroup v2 ``cpu.max`` (``"200000 100000"`` = 2 cores, ``"max 100000"`` = no limit), else
    cgroup v1 ``cpu/cpu.cfs_quota_us`` / ``cpu.cfs_period_us``. On Binder and in Docker the quota can
    be 1 core while ``os.cpu_count()`` reports every core of the host.
    """
    root = Path(cgroup_root)
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


def available_cpus(cgroup_root: str | os.PathLike = "/sys/fs/cgroup") -> int:
    """Cores this process may really use: its CPU affinity, capped by the container's quota (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = cpu_quota(cgroup_root)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def default_num_threads(environ: dict[str, str] | None = None, cgroup_root: str | os.PathLike = "/sys/fs/cgroup") -> int:
    """How many threads PyTorch should use on the CPU.

    Order: ``$CAE_NUM_THREADS`` (a positive integer), then ``$OMP_NUM_THREADS``, then
    :func:`available_cpus` (affinity and container quota). PyTorch's own default is the number of
    cores of the *host*, which oversubscribes a container limited to fewer cores, and two trainings
    side by side then run 4 to 8 times slower; give each ``CAE_NUM_THREADS=1`` in that case.

    Raises:
        ValueError: ``$CAE_NUM_THREADS`` is set but is not a positive integer.
    """
    env = os.environ if environ is None else environ
    value = env.get(THREADS_ENV_VAR, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{THREADS_ENV_VAR}={value!r}: expected a positive whole number of threads, e.g. {THREADS_ENV_VAR}=2")
        return int(value)
    omp = env.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) >= 1:
        return int(omp)
    return available_cpus(cgroup_root)


def configure_threads(n: int | None = None) -> int:
    """Set PyTorch's CPU thread count to ``n`` (default :func:`default_num_threads`); return it.

    The command line calls this once at start-up; in Python call it yourself (nothing is changed
    at import time).
    """
    n = default_num_threads() if n is None else int(n)
    if n != torch.get_num_threads():
        torch.set_num_threads(n)
    return n


def check_environment() -> None:
    """Check the environment variables cae-lib reads, so that a wrong value stops every command at once.

    ``CAE_NUM_THREADS`` (:func:`default_num_threads`) and ``CAE_MEMORY_BUDGET_MB``
    (:func:`cae_lib.data.mmap.memory_budget_mb`; otherwise read only when a large split is loaded,
    and never for the bundled digits). ``CAE_DATA_DIR`` is checked where it is used
    (:func:`cae_lib.data.paths.check_data_dir`), since most commands can run without it.

    Raises:
        ValueError: a variable is set to a value it cannot take; the message names the variable and a value that works.
    """
    default_num_threads()
    from cae_lib.data.mmap import DEFAULT_BUDGET_MB, ENV_BUDGET, memory_budget_mb  # here: cae_lib.data imports this module

    try:
        memory_budget_mb()
    except ValueError:
        raise ValueError(
            f"{ENV_BUDGET}={os.environ.get(ENV_BUDGET, '')!r}: expected a number of megabytes of at least 0 (the memory a data "
            f"split, or the images `sample` makes, may take; default {DEFAULT_BUDGET_MB:g}). Unset it, or set e.g. {ENV_BUDGET}=1024."
        ) from None


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux and macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


DEVICE_CHOICES = "auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N (the N-th GPU) or mps"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def check_device(device: str | None = "auto") -> torch.device:
    """The device a run asks for (:func:`cae_lib.utils.pick_device`), checked before any work starts.

    Raises:
        ValueError: ``device`` is not a device name (``"gpu"``), or names a device this machine
            has not got (``"cuda"`` without a GPU, ``"cuda:3"`` with one GPU, ``"mps"`` off a Mac).
            The message names ``--device`` / ``TrainConfig.device`` and the values that work.
    """
    if device in (None, "auto"):
        return pick_device(device)
    where = f"device {str(device)!r} (--device, TrainConfig.device)"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{where} is not a device name; use --device {DEVICE_CHOICES}.") from None
    fix = "Use --device auto (it takes the best device there is) or --device cpu."
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this PyTorch was built without CUDA" if torch.version.cuda is None else "PyTorch finds no NVIDIA GPU or driver"
            raise ValueError(f"{where}: no CUDA GPU is available here ({why}). {fix}")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"{where}: this machine has {count} GPU{'s' if count != 1 else ''}, numbered 0 to {count - 1}. "
                             f"Use --device cuda:0 ... cuda:{count - 1}, or --device cuda.")
    elif dev.type == "mps" and not _mps_available():
        raise ValueError(f"{where}: Apple's MPS is not available here (it needs a Mac with Apple silicon and a PyTorch "
                         f"built for it). {fix}")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{where}: cae-lib runs on {DEVICE_CHOICES}, not {dev.type}. {fix}")
    return dev
