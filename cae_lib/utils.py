"""Small shared helpers: seeding, device choice, CPU threads, atomic file writes, resource measurement."""

from __future__ import annotations

import json
import math
import os
import random
import resource
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


def pick_device(device: str | None = "auto") -> torch.device:
    """Return the requested device; ``"auto"`` picks CUDA, then Apple MPS, then CPU."""
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


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


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    A crash half-way through a write therefore never leaves a truncated file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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
