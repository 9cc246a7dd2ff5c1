"""Shape contracts of the encoder, decoder and projection head, and of the augmentation."""

import math
import re

import pytest
import torch
from scripts import ROOT, load_script

from cae_lib.augment import ContrastiveAugment
from cae_lib.config import AugmentConfig, CAEConfig, ModelConfig, preset
from cae_lib.models import ContrastiveAutoencoder, count_parameters


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [28, 64])
@pytest.mark.parametrize("variant", ["ae", "vae"])
def test_shapes(channels, size, variant):
    model = ContrastiveAutoencoder(ModelConfig(in_channels=channels, image_size=size, latent_dim=12, width=8, variant=variant))
    x = torch.rand(3, channels, size, size)
    out = model(x)
    assert out.x_hat.shape == x.shape
    assert out.z.shape == out.mu.shape == out.h.shape == (3, 12)
    assert (out.logvar is None) == (variant == "ae")
    last = model.decoder.net[-2]  # the output convolution, before the sigmoid: zero weights, bias log(3) -> 3/4 everywhere
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(math.log(3))
    assert torch.allclose(model(x).x_hat, torch.full_like(x, 0.75))
    assert model(x, n_decode=2).x_hat.shape == (2, channels, size, size)  # decode only the first codes
    assert model(x, n_decode=0).x_hat.shape == (0, channels, size, size)


def test_vae_samples_in_train_mode_and_uses_mean_in_eval():
    model = ContrastiveAutoencoder(ModelConfig(latent_dim=6, width=4, variant="vae"))
    x = torch.rand(4, 1, 28, 28)
    model.train()
    out = model(x)
    assert not torch.allclose(out.z, out.mu)
    model.eval()
    out = model(x)
    assert torch.equal(out.z, out.mu)


def test_default_model_is_small():
    # The docs state the parameter count; keep them honest.
    n = count_parameters(ContrastiveAutoencoder(CAEConfig().model))
    assert 100_000 < n < 1_000_000


@pytest.mark.parametrize("bad", [dict(variant="gan"), dict(in_channels=2), dict(image_size=32)])
def test_invalid_model_config(bad):
    with pytest.raises(ValueError):
        ContrastiveAutoencoder(ModelConfig(**bad))


def test_presets():
    assert preset("ae").loss.contrastive_weight == 0
    assert preset("contrastive").loss.recon_weight == 0
    assert preset("vae").model.variant == "vae" and preset("vae").loss.kl_weight > 0
    with pytest.raises(ValueError, match="choose one of"):
        preset("simclr")


def test_config_json_round_trip(tmp_path):
    cfg = preset("cvae", dataset="breastmnist")
    cfg.train.epochs = 3
    path = cfg.to_json(tmp_path / "c.json")
    assert CAEConfig.from_json(path) == cfg
    with pytest.raises(ValueError, match="unknown config keys"):
        CAEConfig.from_dict({"datset": "x"})


@pytest.mark.parametrize("channels", [1, 3])
def test_augment_shapes_range_and_seed(channels):
    aug = ContrastiveAugment(AugmentConfig(strength=1.0, hflip=True))
    x = torch.rand(5, channels, 28, 28)
    a1, b1 = aug.two_views(x, torch.Generator().manual_seed(1))
    a2, b2 = aug.two_views(x, torch.Generator().manual_seed(1))
    assert a1.shape == x.shape and 0 <= a1.min() and a1.max() <= 1
    assert torch.equal(a1, a2) and torch.equal(b1, b2)  # same seed, same views
    assert not torch.allclose(a1, b1)  # two different views


def test_augment_strength_zero_is_identity_and_strength_scales_change():
    x = torch.rand(16, 1, 28, 28)
    assert torch.equal(ContrastiveAugment(AugmentConfig(strength=0))(x, torch.Generator()), x)
    diffs = []
    for s in (0.25, 1.0, 2.0):
        v = ContrastiveAugment(AugmentConfig(strength=s))(x, torch.Generator().manual_seed(0))
        diffs.append((v - x).abs().mean().item())
    assert diffs[0] < diffs[1] < diffs[2]
    with pytest.raises(ValueError, match="strength"):
        ContrastiveAugment(AugmentConfig(strength=-1))


def test_brightness_ramp_is_linear_bounded_and_random_in_direction():
    aug = ContrastiveAugment(AugmentConfig(gradient=0.2))
    x = torch.zeros(64, 1, 28, 28)
    ramp = aug._ramp(x, torch.Generator().manual_seed(0))  # (B, 1, H, W), before the 0.2 * strength scaling
    assert ramp.shape == (64, 1, 28, 28) and ramp.abs().max() <= 1 + 1e-6
    # linear: constant steps along rows and along columns, and zero at the centre
    assert torch.allclose(ramp[:, :, :, 1:] - ramp[:, :, :, :-1], (ramp[:, :, :, 1] - ramp[:, :, :, 0])[..., None], atol=1e-6)
    assert torch.allclose(ramp[:, :, 1:, :] - ramp[:, :, :-1, :], (ramp[:, :, 1, :] - ramp[:, :, 0, :])[:, :, None], atol=1e-6)
    assert torch.allclose(ramp.mean(dim=(1, 2, 3)), torch.zeros(64), atol=1e-6)
    slopes = torch.stack([ramp[:, 0, 0, -1] - ramp[:, 0, 0, 0], ramp[:, 0, -1, 0] - ramp[:, 0, 0, 0]], 1)
    assert (slopes[:, 0] > 0).any() and (slopes[:, 0] < 0).any() and (slopes[:, 1] > 0).any() and (slopes[:, 1] < 0).any()


def test_zoom_range_in_and_out_and_its_effect_on_the_field_of_view():
    g, cpu = torch.Generator().manual_seed(0), torch.device("cpu")
    still = dict(strength=1.0, max_rotation=0.0, max_shift=0.0)
    zoom_in = ContrastiveAugment(AugmentConfig(**still)).affine(512, g, cpu)  # default: zoom in only
    both = ContrastiveAugment(AugmentConfig(**still, max_scale=1.3)).affine(512, g, cpu)
    for theta, low, high in ((zoom_in, 0.8, 1.0), (both, 0.8, 1.3)):
        scale = theta[:, 0, 0]
        assert torch.equal(scale, theta[:, 1, 1]) and not theta[:, 0, 1].any() and not theta[:, :, 2].any()
        assert low - 1e-6 <= scale.min() < low + 0.02 and high - 0.02 < scale.max() <= high + 1e-6
    # a centred bright square on black: zooming out shows a wider field, so the square covers less of the image
    x = torch.zeros(1, 1, 28, 28)
    x[..., 8:20, 8:20] = 1.0
    out = ContrastiveAugment(AugmentConfig(**still, min_scale=1.25, max_scale=1.25)).geometric(x, g)
    inn = ContrastiveAugment(AugmentConfig(**still, min_scale=0.8, max_scale=0.8)).geometric(x, g)
    assert out.sum() == pytest.approx(144 / 1.25**2, rel=0.05) and inn.sum() == pytest.approx(144 / 0.8**2, rel=0.05)
    old = CAEConfig().to_dict()
    del old["augment"]["max_scale"]
    assert CAEConfig.from_dict(old).augment.max_scale == 1.0  # a config saved before the setting zoomed in only
    for bad in (dict(min_scale=1.2), dict(max_scale=0.7), dict(min_scale=0.0)):
        with pytest.raises(ValueError, match="zoom range"):
            ContrastiveAugment(AugmentConfig(**bad))


@pytest.mark.parametrize("size", [28, 64, 128, 224])
def test_every_medmnist_size_keeps_the_code_size(size: int) -> None:
    cfg = ModelConfig(image_size=size, in_channels=3, latent_dim=16, width=4)
    model = ContrastiveAutoencoder(cfg)
    out = model(torch.rand(2, 3, size, size))
    assert out.x_hat.shape == (2, 3, size, size) and out.z.shape == (2, 16) and out.h.shape == (2, 16)
    assert model.encoder.backbone.out_shape[1] in (7, 8)  # the last feature map is 7x7 or 8x8 at every size


def test_macs_follow_the_image_area() -> None:
    """benchmarks/sizes.py's count_macs against a hand count for the smallest model, and growth with the image size."""
    count_macs = load_script("benchmarks/sizes.py").count_macs
    cfg = ModelConfig(image_size=28, in_channels=1, latent_dim=2, width=1, proj_hidden_mult=1)
    model = ContrastiveAutoencoder(cfg)
    # encoder: conv3x3 1->1 on 28x28, conv4x4 1->2 s2 (14x14), conv4x4 2->4 s2 (7x7), linear 196->2
    encoder = 9 * 28 * 28 + 16 * 2 * 14 * 14 + 16 * 2 * 4 * 7 * 7 + 196 * 2
    # decoder: linear 2->196, convT4x4 4->2 (14x14 out), convT4x4 2->1 (28x28 out), conv3x3 1->1 on 28x28
    decoder = 2 * 196 + 16 * 4 * 2 * 7 * 7 + 16 * 2 * 1 * 14 * 14 + 9 * 28 * 28
    head = 2 * 2 + 2 * 2 + 2 * 2
    assert count_macs(model, (1, 28, 28)) == encoder + decoder + head
    macs = [count_macs(ContrastiveAutoencoder(ModelConfig(image_size=s)), (1, s, s)) for s in (28, 64, 128, 224)]
    assert macs == sorted(macs) and macs[-1] > 50 * macs[0]


def test_unknown_size_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="28, 64, 128, 224"):
        ModelConfig(image_size=100).validate()


def test_the_layout_table_in_docs_scaling_is_the_encoder() -> None:
    """Each row of docs/scaling.md's table against the feature maps the encoder really makes (w = 16)."""
    rows = re.findall(r"^\| (\d+) px \| (\d+) \| ([^|]+) \| ([^|]+) \|$", (ROOT / "docs" / "scaling.md").read_text(), re.M)
    assert [int(r[0]) for r in rows] == [28, 64, 128, 224]

    def in_channels_and_side(text: str) -> list[tuple[int, int]]:  # "2w × 14" -> (32, 14) at w = 16
        return [(16 * int(mult or 1), int(side)) for mult, side in re.findall(r"(\d?)w × (\d+)", text)]

    for size, blocks, maps, last in rows:
        backbone = ContrastiveAutoencoder(ModelConfig(image_size=int(size))).encoder.backbone
        shapes = []
        for block in backbone.net[:-1]:  # every conv block; the last module flattens
            block.register_forward_hook(lambda _m, _i, out: shapes.append((out.shape[1], out.shape[2])))
        backbone(torch.rand(1, 1, int(size), int(size)))
        assert shapes == in_channels_and_side(maps) and len(shapes) == int(blocks) + 1
        channels, side = shapes[-1]
        assert last.strip() == f"{channels // 16}w × {side} × {side}" and backbone.out_features == channels * side * side
