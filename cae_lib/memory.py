"""Keep freed memory for the next training step instead of handing it back to the system.

Why this matters on a CPU. Every training step allocates the same large activation tensors and
frees them again: at the default batch of 256 (512 views), one 16-channel 28 x 28 feature map is
512 x 16 x 28 x 28 values, 12.8 MB in bf16. glibc's ``malloc`` returns big freed blocks to the
operating system (``munmap`` for blocks above its mmap threshold, and trimming of the heap's free
top above its trim threshold). The next step's tensor then lands on fresh pages, and the kernel
zero-fills each 4 KiB page on its first write: a *page fault*. Measured on PneumoniaMNIST with
the default model, one epoch took about 264,000 minor page faults on one thread and 454,000 on
two (1.1 and 1.9 GB of zero-filling). The ops that write fresh tensors (BatchNorm, the ReLU
backward, the first convolution) paid for them, and with two threads they got *slower* than with
one, probably because the faults of both threads queue on the process's memory map. Keeping
the freed blocks in the heap removes the faults: about +13 % images/s on one thread and +25 % on
two (``benchmarks/results/speed.md``).

:func:`keep_freed_memory` sets two glibc ``mallopt`` parameters (see ``man 3 mallopt``):
``M_MMAP_THRESHOLD`` (blocks below it come from the heap, not from their own ``mmap``) and
``M_TRIM_THRESHOLD`` (free memory at the heap's top is kept until it exceeds this). The
:class:`~cae_lib.trainer.Trainer` calls it when :meth:`~cae_lib.trainer.Trainer.fit` starts and
calls :func:`release_freed_memory` (``malloc_trim(0)``) when it ends, so the memory a run used goes
back to the system once training is over. Peak memory during training is unchanged: the same
tensors are alive at the same time; they are only reused. The two thresholds stay set after
training (glibc cannot switch its automatic thresholds back on); later freed blocks are then kept
for the process to reuse until the next ``malloc_trim``, which does not raise its peak.

Both are process-wide settings of the C library, like ``torch.set_num_threads``, and they change
no computed value. Elsewhere than Linux with glibc (macOS, Windows, musl) both do nothing and
return ``False``.
"""

from __future__ import annotations

import ctypes
import platform
import sys

#: glibc's mallopt parameter numbers (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

#: Blocks up to 1 GiB come from the heap, and up to 1 GiB of free heap top is kept.
KEEP_BYTES = 1 << 30


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (whose ``mallopt`` and ``malloc_trim`` we use), else None."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def keep_freed_memory(keep_bytes: int = KEEP_BYTES) -> bool:
    """Let glibc keep freed blocks up to ``keep_bytes`` for reuse; True when the settings took.

    Idempotent: calling it again sets the same values.
    """
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, int(keep_bytes))) and bool(libc.mallopt(M_TRIM_THRESHOLD, int(keep_bytes)))


def release_freed_memory() -> bool:
    """Hand the heap's free memory back to the system (glibc ``malloc_trim(0)``); True if some was."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))
