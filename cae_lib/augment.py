"""Two-view contrastive augmentation, batched on tensors.

SimCLR (Chen et al., 2020) learns by asking the network to recognise two random *views* of
the same image among all the other images in the batch. What the views share is what the
latent space keeps; what differs between them (position, exposure, noise) it learns to ignore.

For medical images the views must stay plausible, so the transforms are mild:

* a small random zoom (in: a crop; optionally out: a wider field of view), shift and rotation, all
  in one affine warp;
* optional horizontal / vertical flips (off by default: chest X-rays are not left-right symmetric);
* brightness and contrast jitter (scanner and exposure differences);
* a linear brightness ramp in a random direction (uneven exposure across the field, such as the
  X-ray tube's heel effect, or a vignetted microscope or dermatoscope image);
* Gaussian blur (focus, resolution) and Gaussian noise (sensor noise).

Everything runs on a whole batch at once (one ``affine_grid`` + ``grid_sample``), so it is fast on
CPU and needs no DataLoader workers. Randomness comes only from the ``torch.Generator`` you pass,
so a fixed seed gives the same views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    """Strength of the two-view contrastive augmentation (see :mod:`cae_lib.augment`).

    ``strength`` scales every magnitude at once: 0 gives identical views, 1 gives the magnitudes
    listed below, 2 is aggressive; the default is 1.5. ``hflip``/``vflip`` are off because chest
    X-rays are not left-right symmetric (the heart is on the left); turn them on for cells or skin
    lesions. ``gradient`` adds a linear brightness ramp in a random direction (uneven exposure); a
    saved config without this key means 0. ``min_scale`` / ``max_scale`` bound the random zoom:
    the view shows a window ``scale`` times the image's size, so below 1 zooms in (a crop) and
    above 1 zooms out (off by default; try it where the framing varies with something other than
    the label).

    Why each default: ``benchmarks/results/sweep_defaults.md`` (validation splits only).
    """

    strength: float = 1.5
    max_rotation: float = 10.0  # degrees at strength 1
    min_scale: float = 0.8  # random zoom: window scale in [min_scale, max_scale] at strength 1 (< 1 zooms in)
    max_scale: float = 1.0  # > 1 also zooms out (a wider field of view)
    max_shift: float = 0.08  # fraction of the image at strength 1
    brightness: float = 0.2
    contrast: float = 0.2
    gradient: float = 0.2  # linear brightness ramp in a random direction, up to +-gradient at strength 1
    noise_std: float = 0.03
    blur_prob: float = 0.3
    hflip: bool = False
    vflip: bool = False

    def validate(self) -> None:
        if self.strength < 0:
            raise ValueError(f"augmentation strength must be >= 0, got {self.strength}")
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(
                f"the zoom range must satisfy 0 < min_scale <= max_scale (below 1 zooms in, above 1 zooms out); "
                f"got min_scale={self.min_scale}, max_scale={self.max_scale}"
            )


class ContrastiveAugment:
    """Random, label-preserving views of a batch.

    Args:
        config: magnitudes at strength 1 and the global ``strength`` multiplier.

    Call it on ``x: (B, C, H, W)`` floats in ``[0, 1]``; it returns a tensor of the same shape
    and range. :meth:`two_views` returns two independent views.

    Example:
        >>> aug = ContrastiveAugment(AugmentConfig(strength=1.0))
        >>> g = torch.Generator().manual_seed(0)
        >>> v1, v2 = aug.two_views(torch.rand(8, 1, 28, 28), g)
        >>> v1.shape
        torch.Size([8, 1, 28, 28])
    """

    def __init__(self, config: AugmentConfig | None = None) -> None:
        self.config = config or AugmentConfig()
        self.config.validate()

    def _uniform(self, n: int, low: float, high: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
        return (torch.rand(n, generator=g) * (high - low) + low).to(device)

    def affine(self, b: int, g: torch.Generator, device: torch.device) -> torch.Tensor:
        """One random affine map per image, shape (B, 2, 3), from output to input grid coordinates.

        Its linear part is a rotation times a zoom factor ``scale`` (times the optional flips):
        ``scale < 1`` samples a smaller window (zoom in), ``scale > 1`` a larger one (zoom out, with
        the image's border pixels repeated outside it).
        """
        c, s = self.config, self.config.strength
        angle = self._uniform(b, -1, 1, g, device) * math.radians(c.max_rotation * s)
        scale = self._uniform(b, 1 - (1 - c.min_scale) * s, 1 + (c.max_scale - 1) * s, g, device).clamp(min=0.3)
        shift = (torch.rand(b, 2, generator=g).to(device) * 2 - 1) * c.max_shift * s * 2  # grid units are [-1, 1]
        flip_x = torch.ones(b, device=device)
        flip_y = torch.ones(b, device=device)
        if c.hflip:
            flip_x = torch.where(torch.rand(b, generator=g).to(device) < 0.5, -1.0, 1.0)
        if c.vflip:
            flip_y = torch.where(torch.rand(b, generator=g).to(device) < 0.5, -1.0, 1.0)
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        return torch.stack(
            [
                torch.stack([cos * flip_x, -sin * flip_y, shift[:, 0]], dim=1),
                torch.stack([sin * flip_x, cos * flip_y, shift[:, 1]], dim=1),
            ],
            dim=1,
        )

    def geometric(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """One affine warp per image (see :meth:`affine`): zoom, shift, rotation and optional flips. x: (B, C, H, W)."""
        return _warp(x, self.affine(x.shape[0], g, x.device))

    def photometric(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Brightness / contrast jitter, random blur and Gaussian noise. x: (B, C, H, W) in [0, 1]."""
        c, s = self.config, self.config.strength
        b, device = x.shape[0], x.device
        shape = (b, 1, 1, 1)
        brightness = self._uniform(b, -c.brightness * s, c.brightness * s, g, device).view(shape)
        contrast = self._uniform(b, 1 - c.contrast * s, 1 + c.contrast * s, g, device).view(shape).clamp(min=0.1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * contrast + mean + brightness
        if c.gradient > 0 and s > 0:
            x = x + self._ramp(x, g) * c.gradient * s
        if c.blur_prob > 0 and s > 0:
            blurred = _box_blur3(x)
            use_blur = (torch.rand(b, generator=g) < min(1.0, c.blur_prob * s)).to(device).view(shape)
            amount = self._uniform(b, 0.3, 1.0, g, device).view(shape)
            x = torch.where(use_blur, x + amount * (blurred - x), x)
        if c.noise_std > 0 and s > 0:
            x = x + torch.randn(x.shape, generator=g).to(device) * c.noise_std * s
        return x.clamp(0.0, 1.0)

    def _ramp(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """One linear ramp per image, from -a to +a across it in a random direction, a in [-1, 1]. Shape (B, 1, H, W)."""
        b, _, h, w = x.shape
        angle = torch.rand(b, generator=g) * 2 * math.pi
        amplitude = torch.rand(b, generator=g) * 2 - 1
        ys = torch.linspace(-1, 1, h).view(1, h, 1)
        xs = torch.linspace(-1, 1, w).view(1, 1, w)
        ramp = (torch.cos(angle).view(b, 1, 1) * xs + torch.sin(angle).view(b, 1, 1) * ys) / math.sqrt(2)
        return (amplitude.view(b, 1, 1) * ramp).unsqueeze(1).to(device=x.device, dtype=x.dtype)

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"expected a batch of shape (B, C, H, W), got {tuple(x.shape)}")
        if self.config.strength == 0:
            return x.clone()
        return self.photometric(self.geometric(x, g), g)

    def two_views(self, x: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independent random views of the batch, each (B, C, H, W)."""
        return self(x, g), self(x, g)


def _warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample ``x: (B, C, H, W)`` through the affine maps ``theta: (B, 2, 3)`` (output to input grid
    coordinates), bilinear, with the border pixels repeated outside the image."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _box_blur3(x: torch.Tensor) -> torch.Tensor:
    """A cheap separable 3x3 smoothing (binomial [1, 2, 1] / 4) applied per channel."""
    k = torch.tensor([1.0, 2.0, 1.0], device=x.device, dtype=x.dtype) / 4
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (1, 1, 0, 0), mode="replicate"), k.view(1, 1, 1, 3).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, 1, 1), mode="replicate"), k.view(1, 1, 3, 1).repeat(c, 1, 1, 1), groups=c)
