"""The learning-rate schedule: linear warm-up, then a half-cosine decay to zero.

Adam with a constant learning rate spends its last steps bouncing around the minimum it has
found; letting the rate fall to zero at the end settles the weights, and a short warm-up keeps
the first steps (when BatchNorm statistics and Adam's moment estimates are still poor) from
throwing the weights far. SimCLR trains this way (Chen et al., 2020, arXiv 2002.05709, sec. B.6:
linear warm-up, then cosine decay without restarts; Loshchilov & Hutter, 2017, arXiv 1608.03983).

The rate is a pure function of the step number, so a run resumed at step ``s`` continues on
exactly the same curve.
"""

from __future__ import annotations

import math


def learning_rate(step: int, total_steps: int, base_lr: float, schedule: str = "cosine", warmup_fraction: float = 0.1) -> float:
    """The learning rate of optimisation step ``step`` (0-based) out of ``total_steps``.

    ``"constant"``: ``base_lr`` at every step. ``"cosine"``: ``base_lr * (step + 1) / W`` for the
    first ``W = round(warmup_fraction * total_steps)`` steps, then
    ``base_lr * (1 + cos(pi * t)) / 2`` with ``t`` going from 0 (first step after warm-up) to 1
    (one step past the last), so the last step's rate is small but not zero.

    Example:
        >>> [round(learning_rate(s, 10, 1.0, warmup_fraction=0.2), 3) for s in range(10)]
        [0.5, 1.0, 1.0, 0.962, 0.854, 0.691, 0.5, 0.309, 0.146, 0.038]
    """
    if schedule == "constant":
        return base_lr
    if schedule != "cosine":
        raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose 'cosine' or 'constant'")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    warmup = round(warmup_fraction * total_steps)
    if step < warmup:
        return base_lr * (step + 1) / warmup
    t = (step - warmup) / max(1, total_steps - warmup)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))
