"""Loss functions of the contrastive autoencoder, each documented with shapes and references.

* :class:`NTXentLoss` - the normalised temperature-scaled cross-entropy of SimCLR
  (Chen et al., 2020, arXiv 2002.05709, eq. 1).
* :func:`reconstruction_loss` - pixel-wise MSE or binary cross-entropy.
* :func:`kl_divergence` - KL(N(mu, sigma^2) || N(0, I)) in closed form
  (Kingma & Welling, 2014, arXiv 1312.6114, Appendix B).
* :class:`CAEObjective` - the weighted sum used for training (Ferrante et al., 2023), a callable
  ``objective(model, batch, generator) -> (loss, logs)`` that the model-agnostic
  :class:`~cae_lib.trainer.Trainer` optimises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from cae_lib.augment import ContrastiveAugment

if TYPE_CHECKING:
    from cae_lib.config import CAEConfig


RECON_LOSSES = ("mse", "bce")


@dataclass
class LossConfig:
    """Weights of the combined objective ``recon_weight*recon + contrastive_weight*ntxent + kl_weight*KL``.

    Attributes:
        recon: ``"mse"`` or ``"bce"``, both averaged over pixels and images, so the weights stay comparable.
        recon_weight, contrastive_weight: the balance of the two terms; the paper's equal weights
            (default 1 and 1) won the sweep's stage 7.
        temperature: NT-Xent temperature tau (SimCLR), > 0.01; default 0.2 (the sweep's stage 2).
        recon_views: how many of each image's two views are reconstructed: 2 (both, the default)
            or 1 (the first only, a step about a quarter cheaper; stage 6). A saved config without
            this key means 2.

    Why each default: ``benchmarks/results/sweep_defaults.md`` (validation splits only).
    """

    recon: str = "mse"
    recon_weight: float = 1.0
    contrastive_weight: float = 1.0
    kl_weight: float = 0.0
    temperature: float = 0.2
    recon_views: int = 2

    def validate(self) -> None:
        if self.recon_views not in (1, 2):
            raise ValueError(f"recon_views must be 1 (reconstruct the first view) or 2 (both views), got {self.recon_views}")
        if self.recon not in RECON_LOSSES:
            raise ValueError(f"unknown reconstruction loss {self.recon!r}; choose one of {RECON_LOSSES}")
        if min(self.recon_weight, self.contrastive_weight, self.kl_weight) < 0:
            raise ValueError("loss weights must be >= 0")
        if self.recon_weight + self.contrastive_weight == 0:
            raise ValueError("recon_weight and contrastive_weight are both 0: nothing to learn")


def several_processes() -> bool:
    """True when a ``torchrun`` process group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient and returns this rank's slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return tuple(parts)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        stacked = torch.stack(grads)
        dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
        return stacked[dist.get_rank()]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x (n, D)`` from every rank in rank order -> ``(world_size * n, D)``, keeping gradients.

    Without a process group it returns ``x`` itself. Every rank must pass the same shape.
    """
    if not several_processes():
        return x
    return torch.cat(_GatherWithGrad.apply(x), dim=0)


def at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """``t`` in fp32 if autocast made it bf16/fp16; fp32 and fp64 tensors are returned as they are."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class NTXentLoss(nn.Module):
    """NT-Xent (InfoNCE over the 2N views of a batch), SimCLR's contrastive loss.

    For a batch of N images there are 2N views. Each view's *positive* is the other view of the
    same image; the other 2N - 2 views are its negatives. With cosine similarity ``sim`` and
    temperature ``tau``, the loss of view i whose positive is j is::

        l(i, j) = -log( exp(sim(i, j) / tau) / sum_{k != i} exp(sim(i, k) / tau) )

    averaged over all 2N views. At chance (all similarities equal) it is ``log(2N - 1)``; for
    identical, perfectly aligned views of mutually orthogonal images it equals
    ``-log(e^(1/tau) / (e^(1/tau) + 2N - 2))`` (negatives that point away from a view go lower still).

    Args:
        temperature: tau > 0.01. Small tau sharpens the softmax; SimCLR used 0.5 for small batches.
        gather_distributed: when several processes train together (``torchrun``, DDP), gather
            the projections of every rank (:func:`gather_with_grad`), so that
            each view is contrasted with the 2N - 2 negatives of the *global* batch, not only
            its own rank's: the loss then does not change with the number of processes. Each
            rank returns the mean over its own views; with DDP's gradient averaging this is the
            gradient of the single-process loss. ``None`` (default) gathers whenever a process
            group with more than one rank is running; ``False`` contrasts within each rank.

    Shapes:
        z1, z2: (N, D) projections of the two views (they need not be normalised).
        returns: a scalar tensor.

    Raises:
        ValueError: if the temperature is too small, or z1/z2 shapes differ or N < 2.

    Example:
        >>> loss_fn = NTXentLoss(temperature=0.5)
        >>> loss = loss_fn(torch.randn(8, 16), torch.randn(8, 16))
    """

    def __init__(self, temperature: float = 0.5, gather_distributed: bool | None = None) -> None:
        super().__init__()
        if not temperature > 0.01:
            raise ValueError(f"temperature must be > 0.01 (got {temperature}); values near 0 overflow the softmax")
        self.temperature = float(temperature)
        self.gather_distributed = gather_distributed

    def similarity_logits(self, z1: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (logits (2N, 2N) with the diagonal masked to -inf, positive index (2N,))."""
        if z1.shape != z2.shape or z1.dim() != 2:
            raise ValueError(f"z1 and z2 must both be (N, D); got {tuple(z1.shape)} and {tuple(z2.shape)}")
        n = z1.shape[0]
        if n < 2:
            raise ValueError("NT-Xent needs at least 2 images per batch (negatives come from the batch)")
        with torch.autocast(z1.device.type, enabled=False):  # similarities in fp32, also under mixed precision
            z = F.normalize(at_least_fp32(torch.cat([z1, z2], dim=0)), dim=1)  # (2N, D), unit length
            logits = z @ z.T / self.temperature  # cosine similarity / tau, (2N, 2N)
        logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))  # a view is not its own negative
        positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)  # view i's partner
        return logits, positives

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        if self.gather_distributed is not False and several_processes():
            return self._forward_gathered(z1, z2)
        logits, positives = self.similarity_logits(z1, z2)
        return F.cross_entropy(logits, positives)  # softmax over the 2N - 1 other views

    def _forward_gathered(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """This rank's views (n of each) against the 2N views of all ranks (N = world_size * n)."""
        if z1.shape != z2.shape or z1.dim() != 2:
            raise ValueError(f"z1 and z2 must both be (N, D); got {tuple(z1.shape)} and {tuple(z2.shape)}")
        rank, n = dist.get_rank(), z1.shape[0]
        a, b = gather_with_grad(z1), gather_with_grad(z2)  # (N, D) each, in rank order
        big_n = a.shape[0]
        own = torch.arange(rank * n, (rank + 1) * n, device=a.device)
        mine = torch.cat([own, big_n + own])  # global row of each of this rank's 2n views
        with torch.autocast(a.device.type, enabled=False):  # similarities in fp32, also under mixed precision
            z = F.normalize(at_least_fp32(torch.cat([a, b], dim=0)), dim=1)  # (2N, D): all first views, then all second views
            logits = z[mine] @ z.T / self.temperature  # (2n, 2N)
        self_mask = torch.zeros_like(logits, dtype=torch.bool)
        self_mask[torch.arange(2 * n, device=z.device), mine] = True
        logits = logits.masked_fill(self_mask, float("-inf"))  # a view is not its own negative
        positives = torch.cat([mine[n:], mine[:n]])  # first view i <-> second view i
        return F.cross_entropy(logits, positives)


def positive_pair_accuracy(logits: torch.Tensor, positives: torch.Tensor, k: int = 1) -> float:
    """Fraction of views whose positive partner ranks within the top ``k`` most similar views.

    A student-friendly progress signal (UvA tutorial 17): chance is about k / (2N - 1).
    """
    k = min(k, logits.shape[1] - 1)
    topk = logits.topk(k, dim=1).indices  # (2N, k)
    return (topk == positives[:, None]).any(dim=1).float().mean().item()


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Mean per-pixel reconstruction error. x_hat, x: (B, C, H, W) in [0, 1] -> scalar."""
    if kind == "mse":
        return F.mse_loss(x_hat, x)
    if kind == "bce":
        return F.binary_cross_entropy(x_hat.clamp(1e-6, 1 - 1e-6), x)
    raise ValueError(f"unknown reconstruction loss {kind!r}; choose 'mse' or 'bce'")


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, summed over latent dims.

    Kingma & Welling (2014), Appendix B: ``-1/2 * sum(1 + log sigma^2 - mu^2 - sigma^2)``.

    Shapes: mu, logvar (B, L) -> (B,).
    """
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


class CAEObjective:
    """The combined training objective of the contrastive autoencoder.

    ``loss = recon_weight * recon + contrastive_weight * NT-Xent + kl_weight * KL / n_pixels``

    Each image gives two augmented views; each view is encoded and projected, and NT-Xent pulls
    the two projections together. The decoder reconstructs both views (``recon_views = 2``) or only
    the first (``recon_views = 1``); the target is the view itself. With ``recon_weight = 0`` it
    does not run. The KL term (VAE only) is divided by the number of pixels so that it sits on the
    same per-pixel scale as the reconstruction term, which keeps ``kl_weight = 1`` a sensible default.

    Call: ``objective(model, batch, generator) -> (loss, logs)`` where ``batch = (x, y)``,
    ``x: (B, C, H, W)`` in [0, 1] (labels are ignored) and ``logs`` holds floats for each term and
    the positive-pair top-1 / top-5 accuracy.
    """

    def __init__(self, loss: LossConfig, augment: ContrastiveAugment) -> None:
        loss.validate()
        self.cfg = loss
        self.augment = augment
        self.ntxent = NTXentLoss(loss.temperature)

    @property
    def uses_every_parameter(self) -> bool:
        """Whether every weight of the CAE gets a gradient (DDP needs to know): not when a term is off."""
        return self.cfg.recon_weight > 0 and self.cfg.contrastive_weight > 0

    @classmethod
    def from_config(cls, cfg: CAEConfig) -> "CAEObjective":
        return cls(cfg.loss, ContrastiveAugment(cfg.augment))

    def __call__(self, model: nn.Module, batch: tuple[torch.Tensor, ...], generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        x = batch[0]
        c = self.cfg
        v1, v2 = self.augment.two_views(x, generator)
        views = torch.cat([v1, v2], dim=0)
        targets = views if c.recon_views == 2 else v1  # what the decoder reconstructs (c.recon_views of the two)
        # One pass over both views keeps BatchNorm statistics shared; the decoder runs only where there is a target.
        out = model(views, n_decode=len(targets) if c.recon_weight > 0 else 0)
        terms: dict[str, torch.Tensor] = {}
        # Under bf16/fp16 autocast the outputs are low precision; every loss is computed in fp32.
        if c.recon_weight > 0:
            terms["recon"] = reconstruction_loss(at_least_fp32(out.x_hat), targets, c.recon)
        if c.contrastive_weight > 0:
            h1, h2 = at_least_fp32(out.h).chunk(2, dim=0)
            terms["contrastive"] = self.ntxent(h1, h2)  # the tested loss module is the one that trains
        if c.kl_weight > 0:
            if out.logvar is None:
                raise ValueError("kl_weight > 0 but the model is not variational (variant='ae')")
            terms["kl"] = kl_divergence(at_least_fp32(out.mu), at_least_fp32(out.logvar)).mean() / views[0].numel()
        weights = {"recon": c.recon_weight, "contrastive": c.contrastive_weight, "kl": c.kl_weight}
        loss = sum(weights[name] * value for name, value in terms.items())
        logs = {name: value.item() for name, value in terms.items()}
        if "contrastive" in terms:
            with torch.no_grad():  # where each positive ranks among the whole (global) batch: a progress signal
                logits, positives = self.ntxent.similarity_logits(gather_with_grad(h1.detach()), gather_with_grad(h2.detach()))
            logs["top1"] = positive_pair_accuracy(logits, positives, 1)
            logs["top5"] = positive_pair_accuracy(logits, positives, 5)
        logs["loss"] = loss.item()
        return loss, logs

    @staticmethod
    def chance_ntxent(batch_size: int) -> float:
        """NT-Xent value when the model cannot tell views apart: log(2N - 1)."""
        return math.log(2 * batch_size - 1)
