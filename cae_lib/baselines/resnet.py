"""Transfer learning: a torchvision ResNet-18 with ImageNet weights, adapted to small images.

The MedMNIST v2 benchmark model. Without network access the weights cannot be fetched; the
returned label then says "from scratch", never "transfer" (see the package docstring).
"""

from __future__ import annotations

import pickle
import socket
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import torch.nn as nn

LABEL_TRANSFER = "ResNet-18 (ImageNet transfer)"
LABEL_SCRATCH = "ResNet-18 (from scratch)"
WEIGHT_CHOICES = ("auto", "imagenet", None)

#: ImageNet channel statistics (torchvision's ``ResNet18_Weights.IMAGENET1K_V1.transforms()``).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PretrainedWeightsUnavailable(RuntimeError):
    """Raised when ``weights="imagenet"`` was asked for and the ImageNet weights cannot be loaded."""


class PretrainedWeightsWarning(UserWarning):
    """Warned when ``weights="auto"`` falls back to a randomly initialised ResNet-18."""


def _imagenet_weights() -> Any:
    from torchvision.models import ResNet18_Weights  # here: torchvision takes 1.5 s and 170 MB to import

    return ResNet18_Weights.IMAGENET1K_V1


def resnet18_weights_path() -> Path:
    """Where torch.hub looks for the ImageNet ResNet-18 weights: ``<torch.hub.get_dir()>/checkpoints/resnet18-f37072fd.pth``.

    ``torch.hub.get_dir()`` is ``$TORCH_HOME/hub`` (``TORCH_HOME`` defaults to ``$XDG_CACHE_HOME/torch``,
    i.e. ``~/.cache/torch``), unless ``torch.hub.set_dir`` was called. It is read at call time.
    """
    url = _imagenet_weights().url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


class ResNet18Classifier(nn.Module):
    """ResNet-18 for small images that takes ``x: (B, C, H, W)`` in ``[0, 1]`` and returns logits ``(B, K)``.

    The ImageNet normalisation happens inside the model, so every caller feeds the same ``[0, 1]``
    batches as to the CAE. For 1 channel the mean / std of the three ImageNet channels are
    averaged (0.449 / 0.226): see :func:`build_resnet18` for why this makes the summed ``conv1``
    exactly equivalent to feeding the grey image replicated in R, G and B.

    Attributes:
        resnet: the (adapted) ``torchvision.models.ResNet``.
        label: ``"ResNet-18 (ImageNet transfer)"`` or ``"ResNet-18 (from scratch)"``.
    """

    def __init__(self, resnet: nn.Module, n_channels: int, label: str) -> None:
        super().__init__()
        self.resnet = resnet
        self.label = label
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        if n_channels == 1:
            mean, std = mean.mean(0, keepdim=True), std.mean(0, keepdim=True)
        self.register_buffer("mean", mean.view(1, n_channels, 1, 1))
        self.register_buffer("std", std.view(1, n_channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resnet((x - self.mean) / self.std)


def _load_imagenet_state_dict(allow_download: bool, download_timeout: float) -> tuple[dict[str, Any] | None, str]:
    """Return ``(state_dict, "")`` or ``(None, reason)``; never touches the network unless allowed."""
    weights = _imagenet_weights()
    path = resnet18_weights_path()
    manual = (
        f"To use ImageNet transfer offline, download {weights.url} on a machine with internet access "
        f"and copy it to {path} (set TORCH_HOME to change the folder)."
    )
    if not path.is_file() and not allow_download:
        return None, f"the ImageNet ResNet-18 weights are not in the torch hub cache ({path}) and allow_download=False. {manual}"
    previous = socket.getdefaulttimeout()
    if not path.is_file():
        # torch.hub's urlopen has no timeout of its own; a socket default timeout bounds every
        # blocking network operation, so a dead connection fails after `download_timeout` s
        # instead of hanging the classroom. torch.hub writes to a temporary file and renames it
        # only when complete, and check_hash verifies the SHA256 prefix in the file name.
        socket.setdefaulttimeout(download_timeout)
    try:
        # weights_only: torch.hub unpickles with weights_only=False by default, so a file copied into
        # the cache by hand (as the manual step below says) could otherwise run any code it holds.
        return weights.get_state_dict(progress=False, check_hash=True, weights_only=True), ""
    except pickle.UnpicklingError as err:
        if "weights only" not in str(err).lower():
            return None, f"could not load the ImageNet ResNet-18 weights ({err}). If the file is corrupted, delete {path} and try again. {manual}"
        return None, (f"{path} holds Python objects other than tensors, and cae-lib will not unpickle arbitrary objects "
                      f"(unpickling one can run any code). Delete it and put the original file there. {manual}")
    except Exception as err:  # network error, timeout, corrupted or truncated file
        what = "download" if not path.is_file() else "load"
        hint = f" If the file is corrupted, delete {path} and try again." if path.is_file() else ""
        return None, f"could not {what} the ImageNet ResNet-18 weights ({type(err).__name__}: {err}).{hint} {manual}"
    finally:
        socket.setdefaulttimeout(previous)


def build_resnet18(
    n_channels: int,
    n_classes: int,
    weights: str | None = "auto",
    allow_download: bool = False,
    download_timeout: float = 10.0,
) -> tuple[nn.Module, str]:
    """A torchvision ResNet-18 adapted to 28-px, 1- or 3-channel images.

    Args:
        n_channels: 1 (grey) or 3 (RGB).
        n_classes: number of outputs K of the new ``fc`` layer.
        weights: ``"auto"`` uses the ImageNet weights if they can be loaded and otherwise warns
            (:class:`PretrainedWeightsWarning`) and starts from scratch; ``"imagenet"`` insists and
            raises :class:`PretrainedWeightsUnavailable` instead of falling back; ``None`` starts
            from scratch silently.
        allow_download: if the weights are not in the torch hub cache
            (:func:`resnet18_weights_path`), download them from ``ResNet18_Weights.IMAGENET1K_V1.url``.
            Off by default: nothing here touches the network unless you ask.
        download_timeout: seconds every network operation may block before the download gives up.

    Returns:
        ``(model, label)``: a :class:`ResNet18Classifier` (``x (B, C, H, W)`` in [0, 1] -> logits
        ``(B, K)``) and ``"ResNet-18 (ImageNet transfer)"`` or ``"ResNet-18 (from scratch)"``,
        saying honestly which one you got (also stored as ``model.label``).

    Adaptation to 28 px. The ImageNet stem (7x7 conv with stride 2, then a stride-2 max-pool)
    shrinks the image 4x before the first residual block: 224 px -> 56 px, but 28 px -> 7 px, and
    layer4 would then see a single pixel. We keep the pretrained 7x7 kernel but use stride 1 and
    padding 3, and replace the max-pool by ``Identity``, so the stem keeps the 28x28 size and the
    four stages see 28, 14, 7 and 4 px, the same grid sizes ImageNet-trained filters saw relative
    to their objects (56, 28, 14, 7 at 224 px), halved.

    One channel. ``conv1``'s weight is summed over its three input channels. A conv is linear in
    its input, so ``conv(W_R, g) + conv(W_G, g) + conv(W_B, g) = conv(W_R + W_G + W_B, g)``: the
    summed kernel on the grey image ``g`` gives exactly what the original kernel gives on ``g``
    replicated in R, G and B, provided the three copies are normalised alike; the model therefore
    normalises grey input with the average ImageNet mean / std (0.449 / 0.226).

    Example:
        >>> model, label = build_resnet18(1, 2, weights=None)
        >>> model(torch.rand(4, 1, 28, 28)).shape, label
        (torch.Size([4, 2]), 'ResNet-18 (from scratch)')
    """
    if weights not in WEIGHT_CHOICES:
        raise ValueError(f"unknown weights {weights!r}; choose one of {WEIGHT_CHOICES}")
    if n_channels not in (1, 3):
        raise ValueError(f"n_channels must be 1 or 3, got {n_channels}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")

    from torchvision.models import resnet18  # here, as in _imagenet_weights

    net = resnet18(weights=None)  # 1000 ImageNet classes, so a pretrained state dict loads strictly
    label = LABEL_SCRATCH
    if weights is not None:
        state_dict, reason = _load_imagenet_state_dict(allow_download, download_timeout)
        if state_dict is not None:
            try:
                net.load_state_dict(state_dict)
                label = LABEL_TRANSFER
            except Exception as err:  # a file that is not a ResNet-18 state dict
                reason = f"{resnet18_weights_path()} is not a ResNet-18 state dict ({err}); delete it and try again."
        if label != LABEL_TRANSFER:
            if weights == "imagenet":
                raise PretrainedWeightsUnavailable(f"weights='imagenet' was requested but {reason}")
            warnings.warn(f"Training ResNet-18 FROM SCRATCH: {reason}", PretrainedWeightsWarning, stacklevel=2)

    old = net.conv1
    conv1 = nn.Conv2d(n_channels, 64, kernel_size=7, stride=1, padding=3, bias=False)
    with torch.no_grad():
        conv1.weight.copy_(old.weight.sum(dim=1, keepdim=True) if n_channels == 1 else old.weight)
    net.conv1 = conv1
    net.maxpool = nn.Identity()
    net.fc = nn.Linear(net.fc.in_features, n_classes)
    return ResNet18Classifier(net, n_channels, label), label
