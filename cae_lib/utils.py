"""Small shared helpers: seeding, device choice, CPU threads, atomic file writes, resource measurement."""

from __future__ import annotations

import errno
import json
import math
import os
import random
import resource
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a fresh ``torch.Generator`` seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's first parameter (CPU for a model without parameters)."""
    p = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return p.device if p is not None else torch.device("cpu")


def class_name(label: Any, class_names: Any = None) -> str:
    """The name of an integer class label, or the label itself when no (matching) name is given."""
    if class_names is None:
        return str(label)
    try:
        return str(class_names[int(label)])
    except (IndexError, KeyError, TypeError, ValueError):
        return str(label)


DEVICE_CHOICES = "auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N (the N-th GPU) or mps"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def pick_device(device: str | None = "auto") -> torch.device:
    """Return the requested device; ``"auto"`` picks CUDA, then Apple MPS, then CPU.

    Raises:
        ValueError: ``device`` is not a device name (``"gpu"``), or names a device this machine
            has not got (``"cuda"`` without a GPU, ``"cuda:3"`` with one GPU, ``"mps"`` off a Mac).
            The message names ``--device`` / ``TrainConfig.device`` and the values that work.
    """
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
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


#: A failed write with less free space than this on its disk is taken to be the disk filling up:
#: PyTorch's checkpoint writer reports a full disk as a ``RuntimeError`` without the ``errno``.
LOW_SPACE_BYTES = 1 << 20


class DiskFullError(OSError):
    """A file could not be written because its disk (or the user's quota) is full; the old file is unchanged."""


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _disk_full(err: BaseException, folder: Path) -> bool:
    """Whether ``err``, raised while writing into ``folder``, means that the disk is full."""
    if isinstance(err, OSError) and err.errno is not None:
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    free = _free_bytes(folder)
    return free is not None and free < LOW_SPACE_BYTES


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    A crash half-way through a write therefore never leaves a truncated file under the final name,
    and a write that fails leaves an earlier file at ``path`` as it was.

    Raises:
        DiskFullError: the disk filled up during the write (the message says so and what to do).
    """
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp_path, path)
    except (OSError, RuntimeError) as err:
        if isinstance(err, DiskFullError) or not _disk_full(err, path.parent):
            raise
        free = _free_bytes(path.parent)
        left = f"{free / 2**20:.1f} MB free" if free is not None else "no space left"
        kept = f"the earlier {path.name} there is unchanged" if path.exists() else "nothing was written"
        raise DiskFullError(
            f"the disk is full: there was no room to write {path} ({left} on the disk that holds {path.parent}); "
            f"{kept}, and nothing half-written was kept. Free some space there (or write to a folder on another "
            "disk) and run again."
        ) from err
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


def save_figure(fig: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Atomically save a matplotlib figure to ``path`` (the format from its suffix, e.g. ``.png``).

    ``kwargs`` go to ``fig.savefig`` (``dpi=...``, ``bbox_inches="tight"``). A crash while
    saving never leaves half an image under ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".").lower() or "png", **kwargs)
    return path


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (NumPy scalars and arrays are converted)."""

    def default(o: Any) -> Any:
        if isinstance(o, (np.integer,)):
            return int(o)
        if isinstance(o, (np.floating,)):
            return float(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"cannot serialise {type(o).__name__} to JSON")

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=default) + "\n")
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write a text file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux and macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def in_notebook() -> bool:
    """True when running inside a Jupyter kernel (used to pick the tqdm flavour)."""
    try:
        from IPython import get_ipython  # type: ignore

        shell = get_ipython()
        return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"
    except Exception:  # pragma: no cover - IPython missing
        return False


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm progress bar that renders as a widget in notebooks and as text in a terminal."""
    if in_notebook():
        try:
            from tqdm.notebook import tqdm as tqdm_nb

            return tqdm_nb(iterable, **kwargs)
        except Exception:  # ipywidgets missing: fall back to text
            pass
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
