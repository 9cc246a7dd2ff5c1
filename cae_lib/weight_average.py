"""An exponential moving average of a model's weights (Polyak averaging).

The weights after the last step of a short run still carry the noise of its last few batches.
Averaging the weights of the recent steps smooths that noise out at almost no cost: one
multiply-add per number per step, against a forward and backward pass. Self-supervised methods
keep such an average as their target network (BYOL, MoCo), and Izmailov et al. (2018, "Averaging
Weights Leads to Wider Optima and Better Generalization") average the weights of the last epochs.

After step t the average is

    average <- d_t * average + (1 - d_t) * weights,   d_t = min(decay, t / (t + 1)),

with t counted from 0. While ``t / (t + 1)`` is the smaller, the average is the plain mean of the
weights after every step so far, so the random initial weights never linger in it; from about
``1 / (1 - decay)`` steps on it is an exponential average over about that many recent steps (20
at 0.95). Floating-point buffers (BatchNorm's running mean and variance) are averaged with the
weights; integer buffers (batch counters) are copied.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["WeightAverage"]


class WeightAverage:
    """Keeps ``average <- d_t * average + (1 - d_t) * weights`` of ``model`` after every :meth:`update` (see the module docstring).

    Args:
        model: the model being trained (its state-dict names are the average's keys).
        decay: in (0, 1); the average spans about ``1 / (1 - decay)`` recent steps.

    Example::

        average = WeightAverage(model, decay=0.95)
        for batch in batches:
            ...; optimizer.step()
            average.update(model)
        average.copy_to(model)  # the model now holds the averaged weights
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"the weight-average decay must be in (0, 1), got {decay}; 0.95 averages about 20 steps")
        self.decay = float(decay)
        self.updates = 0
        self.average: dict[str, torch.Tensor] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        """d_t of the next update: ``min(decay, t / (t + 1))`` after ``t`` updates."""
        return min(self.decay, self.updates / (self.updates + 1))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold ``model``'s current weights and buffers into the average."""
        d = self.current_decay()
        for name, value in model.state_dict().items():
            target = self.average[name]
            if target.is_floating_point():
                target.mul_(d).add_(value.detach(), alpha=1 - d)
            else:
                target.copy_(value)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights and buffers into ``model``."""
        model.load_state_dict(self.average)

    def state_dict(self) -> dict:
        """What resuming needs: the average, the number of updates and the decay."""
        return {"decay": self.decay, "updates": self.updates, "average": self.average}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.updates = float(state["decay"]), int(state["updates"])
        self.average = {k: v.detach().clone() for k, v in state["average"].items()}
