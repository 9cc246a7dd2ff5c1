"""The contrastive autoencoder: encoder, decoder, projection head, AE and VAE variants.

Layout (28 px input, ``width = w``)::

    encoder  x (B, C, 28, 28)
      Conv3x3(C -> w)        + BatchNorm + ReLU          (B, w, 28, 28)
      Conv4x4 s2 (w -> 2w)   + BatchNorm + ReLU          (B, 2w, 14, 14)
      Conv4x4 s2 (2w -> 4w)  + BatchNorm + ReLU          (B, 4w, 7, 7)
      Flatten -> Linear(4w*7*7 -> L)                      z (B, L)    [VAE: two heads, mu and log-variance]
    decoder  z (B, L)
      Linear(L -> 4w*7*7) + ReLU, reshape                (B, 4w, 7, 7)
      ConvT4x4 s2 (4w -> 2w) + BatchNorm + ReLU          (B, 2w, 14, 14)
      ConvT4x4 s2 (2w -> w)  + BatchNorm + ReLU          (B, w, 28, 28)
      Conv3x3(w -> C) + Sigmoid                          x_hat (B, C, 28, 28) in [0, 1]
    projection head (SimCLR; the authors' L -> 2L -> 2L -> L)
      Linear(L -> 2L) + BatchNorm + ReLU, Linear(2L -> 2L) + BatchNorm + ReLU, Linear(2L -> L)

Every MedMNIST+ size uses the same blocks; larger images get more stride-2 blocks (channels
stop growing at 4w), so the last feature map stays 7x7 or 8x8 and the code z keeps its size L.
The decoder mirrors the encoder. The layout at each size is tabled in ``docs/scaling.md``.
Parameters, multiply-accumulates per image and peak memory at each size:
``benchmarks/results/sizes.md`` (made by ``benchmarks/sizes.py``, which counts them).

BatchNorm sits between every convolution and its ReLU; the latent layer has none, so the code is
free to take any scale. With the defaults (L = 32, w = 16) the model has about 0.29 M parameters
(see :func:`count_parameters`), small enough to train in about a minute on two CPU cores.

The contrastive loss acts on the projection ``h = g(z)``, the reconstruction on ``decoder(z)``,
and clustering uses ``z`` itself (for the VAE: ``mu``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

VARIANTS = ("ae", "vae")
IMAGE_SIZES = (28, 64, 128, 224)


@dataclass
class ModelConfig:
    """Architecture of the encoder / decoder / projection head.

    Attributes:
        in_channels: 1 (grey) or 3 (RGB).
        image_size: 28, 64, 128 or 224 (square images; the MedMNIST+ sizes).
        latent_dim: size L of the latent code z.
        width: channels of the first convolution; later blocks use 2x and 4x this.
        variant: ``"ae"`` (deterministic) or ``"vae"`` (mu, log-variance, reparameterisation).
        proj_hidden_mult: the projection head is L -> mult*L -> mult*L -> L (the authors used 2).
    """

    in_channels: int = 1
    image_size: int = 28
    latent_dim: int = 32
    width: int = 16
    variant: str = "ae"
    proj_hidden_mult: int = 2

    def validate(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {VARIANTS}")
        if self.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {self.in_channels}")
        if self.image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {IMAGE_SIZES} (the MedMNIST sizes), got {self.image_size}")
        if self.latent_dim < 1 or self.width < 1:
            raise ValueError("latent_dim and width must be positive")


def _conv_block(c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def _deconv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


#: Stride-2 blocks per image size: the last feature map is 7x7 (28, 224 px) or 8x8 (64, 128 px).
DOWNSAMPLES = {28: 2, 64: 3, 128: 4, 224: 5}


def _n_downsamples(image_size: int) -> int:
    if image_size not in DOWNSAMPLES:
        raise ValueError(f"image_size must be one of {tuple(DOWNSAMPLES)} (the MedMNIST sizes), got {image_size}")
    return DOWNSAMPLES[image_size]


class ConvBackbone(nn.Module):
    """Convolutional feature extractor: x (B, C, H, W) -> features (B, F) (flattened).

    Shared by the encoder and by the same-backbone supervised baseline.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w, n_down = cfg.width, _n_downsamples(cfg.image_size)
        layers = [_conv_block(cfg.in_channels, w, 3, 1, 1)]
        channels = w
        for i in range(n_down):
            out = w * 2 ** min(i + 1, 2)
            layers.append(_conv_block(channels, out, 4, 2, 1))
            channels = out
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.out_shape = (channels, cfg.image_size // 2**n_down, cfg.image_size // 2**n_down)
        self.out_features = channels * self.out_shape[1] * self.out_shape[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Encoder(nn.Module):
    """x (B, C, H, W) in [0, 1] -> (mu (B, L), logvar (B, L) or None)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.backbone = ConvBackbone(cfg)
        self.to_mu = nn.Linear(self.backbone.out_features, cfg.latent_dim)
        self.to_logvar = nn.Linear(self.backbone.out_features, cfg.latent_dim) if cfg.variant == "vae" else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        f = self.backbone(x)
        logvar = self.to_logvar(f).clamp(-10.0, 10.0) if self.to_logvar is not None else None
        return self.to_mu(f), logvar


class Decoder(nn.Module):
    """z (B, L) -> x_hat (B, C, H, W) in [0, 1]; the mirror image of :class:`ConvBackbone`."""

    def __init__(self, cfg: ModelConfig, backbone_shape: tuple[int, int, int]) -> None:
        super().__init__()
        c, h, w_ = backbone_shape
        self.start_shape = backbone_shape
        self.fc = nn.Sequential(nn.Linear(cfg.latent_dim, c * h * w_), nn.ReLU(inplace=True))
        blocks, channels = [], c
        for i in reversed(range(_n_downsamples(cfg.image_size))):
            out = cfg.width * 2 ** min(i, 2)
            blocks.append(_deconv_block(channels, out))
            channels = out
        self.net = nn.Sequential(*blocks, nn.Conv2d(channels, cfg.in_channels, 3, 1, 1), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(-1, *self.start_shape))


class ProjectionHead(nn.Module):
    """SimCLR projection g: z (B, L) -> h (B, L), an MLP L -> mL -> mL -> L (m = 2 by default)."""

    def __init__(self, latent_dim: int, hidden_mult: int = 2) -> None:
        super().__init__()
        hidden = latent_dim * hidden_mult
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, latent_dim),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


@dataclass
class CAEOutput:
    """What one forward pass returns. Shapes: x_hat (B, C, H, W) (fewer rows with ``n_decode``); z, mu, h (B, L); logvar (B, L) or None."""

    x_hat: torch.Tensor
    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor | None
    h: torch.Tensor


class ContrastiveAutoencoder(nn.Module):
    """AE or VAE with a projection head; the variant comes from ``cfg.variant``.

    * ``"ae"``: z = mu = encoder(x).
    * ``"vae"``: z = mu + sigma * eps while training (reparameterisation), z = mu in eval mode.

    Example:
        >>> model = ContrastiveAutoencoder(ModelConfig(latent_dim=16))
        >>> out = model(torch.rand(4, 1, 28, 28))
        >>> out.x_hat.shape, out.z.shape, out.h.shape
        (torch.Size([4, 1, 28, 28]), torch.Size([4, 16]), torch.Size([4, 16]))
    """

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or ModelConfig()
        self.cfg.validate()
        self.encoder = Encoder(self.cfg)
        self.decoder = Decoder(self.cfg, self.encoder.backbone.out_shape)
        self.projector = ProjectionHead(self.cfg.latent_dim, self.cfg.proj_hidden_mult)
        self.use_channels_last(True)

    def use_channels_last(self, enabled: bool = True) -> "ContrastiveAutoencoder":
        """Keep weights and inputs in NHWC ("channels last") layout (the default) or in NCHW.

        The same numbers either way; channels last made the convolutions ~30 % faster on CPU
        (oneDNN) and suits tensor cores on CUDA. ``TrainConfig.channels_last`` sets it.
        """
        self._memory_format = torch.channels_last if enabled else torch.contiguous_format
        return self.to(memory_format=self._memory_format)

    @property
    def is_variational(self) -> bool:
        return self.cfg.variant == "vae"

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, C, H, W) -> (mu (B, L), logvar (B, L) or None)."""
        return self.encoder(x.contiguous(memory_format=self._memory_format))

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor | None) -> torch.Tensor:
        if logvar is None or not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, L) -> x_hat (B, C, H, W) in [0, 1]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, n_decode: int | None = None) -> CAEOutput:
        """x (B, C, H, W) -> :class:`CAEOutput`; ``n_decode`` decodes only the first n codes (x_hat (n, C, H, W))."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        if n_decode == 0:  # nothing to reconstruct (e.g. the contrastive-only ablation): skip the decoder
            x_hat = x.new_empty((0, *x.shape[1:]))
        else:
            x_hat = self.decode(z if n_decode is None else z[:n_decode])
        return CAEOutput(x_hat=x_hat, z=z, mu=mu, logvar=logvar, h=self.projector(z))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
