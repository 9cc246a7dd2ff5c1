"""Losses checked against oracles: a naive double loop, closed forms, torch.distributions."""

import math

import pytest
import torch

from cae_lib.augment import ContrastiveAugment
from cae_lib.config import AugmentConfig, LossConfig, ModelConfig
from cae_lib.losses import CAEObjective, NTXentLoss, kl_divergence, positive_pair_accuracy, reconstruction_loss
from cae_lib.models import ContrastiveAutoencoder


def ntxent_double_loop(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """SimCLR eq. 1 written with explicit loops, as in the paper's Algorithm 1."""
    z = torch.cat([z1, z2])
    n2 = z.shape[0]
    n = n2 // 2
    total = torch.tensor(0.0, dtype=z.dtype)
    for i in range(n2):
        j = (i + n) % n2
        sim = lambda a, b: torch.dot(z[a], z[b]) / (z[a].norm() * z[b].norm())
        numerator = torch.exp(sim(i, j) / tau)
        denominator = sum(torch.exp(sim(i, k) / tau) for k in range(n2) if k != i)
        total = total - torch.log(numerator / denominator)
    return total / n2


@pytest.mark.parametrize("n,d,tau", [(2, 3, 0.5), (4, 8, 0.1), (7, 5, 1.0), (16, 32, 0.07)])
def test_ntxent_matches_double_loop(n, d, tau):
    g = torch.Generator().manual_seed(n * d)
    z1, z2 = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, d, generator=g, dtype=torch.float64)
    assert NTXentLoss(tau)(z1, z2).item() == pytest.approx(ntxent_double_loop(z1, z2, tau).item(), rel=1e-9)


def test_ntxent_gradients_match_double_loop():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    (ga, gb) = torch.autograd.grad(NTXentLoss(0.3)(a, b), (a, b))
    (ra, rb) = torch.autograd.grad(ntxent_double_loop(a, b, 0.3), (a, b))
    assert torch.allclose(ga, ra) and torch.allclose(gb, rb)


@pytest.mark.parametrize("n", [2, 5, 64])
def test_ntxent_identical_embeddings_is_chance(n):
    # All 2N views identical: every other view is equally similar, so the loss is -log(1/(2N-1)).
    z = torch.ones(n, 3)
    assert NTXentLoss(0.5)(z, z.clone()).item() == pytest.approx(-math.log(1 / (2 * n - 1)), rel=1e-6)


@pytest.mark.parametrize("n,tau", [(3, 0.5), (8, 0.2)])
def test_ntxent_aligned_orthogonal_views_closed_form(n, tau):
    # Identical, aligned views of mutually orthogonal images: sim(i, partner) = 1, others 0.
    z = torch.eye(n)
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2 * n - 2))
    assert NTXentLoss(tau)(z, z.clone()).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("tau", [0.0, 1e-4, -1.0])
def test_ntxent_rejects_tiny_temperature(tau):
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(tau)


def test_ntxent_rejects_bad_shapes():
    with pytest.raises(ValueError, match="z1 and z2"):
        NTXentLoss()(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="at least 2"):
        NTXentLoss()(torch.randn(1, 3), torch.randn(1, 3))


def test_positive_pair_accuracy_perfect_and_chance():
    loss_fn = NTXentLoss(0.5)
    logits, pos = loss_fn.similarity_logits(torch.eye(6), torch.eye(6))
    assert positive_pair_accuracy(logits, pos, 1) == 1.0
    # Known ranks: the partner of view r is the (r mod 6)-th most similar candidate (0: the most similar).
    logits = torch.full((12, 12), float("-inf"))
    for r in range(12):
        others = [c for c in range(12) if c not in (r, int(pos[r]))]
        order = others[: r % 6] + [int(pos[r])] + others[r % 6:]  # candidates from most to least similar
        logits[r, order] = torch.arange(11, 0, -1, dtype=torch.float)
    assert positive_pair_accuracy(logits, pos, 1) == pytest.approx(2 / 12)  # rank 0: views 0 and 6
    assert positive_pair_accuracy(logits, pos, 5) == pytest.approx(10 / 12)  # ranks 0-4, not rank 5


@pytest.mark.parametrize("b,l", [(1, 1), (4, 3), (16, 32)])
def test_kl_matches_torch_distributions(b, l):
    g = torch.Generator().manual_seed(b + l)
    mu, logvar = torch.randn(b, l, generator=g, dtype=torch.float64), torch.randn(b, l, generator=g, dtype=torch.float64)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).sum(dim=1)
    assert torch.allclose(kl_divergence(mu, logvar), expected)


def test_kl_is_zero_at_prior():
    assert torch.allclose(kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)), torch.zeros(3))


def test_reconstruction_losses():
    x = torch.rand(2, 1, 4, 4)
    assert reconstruction_loss(x, x, "mse").item() == 0.0
    assert reconstruction_loss(x, x, "mse") < reconstruction_loss(1 - x, x, "mse")
    assert reconstruction_loss(torch.full_like(x, 0.5), x, "bce").item() == pytest.approx(math.log(2), rel=1e-5)
    with pytest.raises(ValueError, match="mse"):
        reconstruction_loss(x, x, "l1")


@pytest.mark.parametrize(
    "variant,weights,expected_terms",
    [
        ("ae", (1, 0, 0), {"recon"}),  # plain AE
        ("ae", (0, 1, 0), {"contrastive"}),  # contrastive only
        ("ae", (1, 1, 0), {"recon", "contrastive"}),  # CAE
        ("vae", (1, 0, 1), {"recon", "kl"}),  # VAE
        ("vae", (1, 1, 1), {"recon", "contrastive", "kl"}),  # contrastive VAE
    ],
)
def test_objective_ablations_are_one_config_change(variant, weights, expected_terms):
    loss_cfg = LossConfig(recon_weight=weights[0], contrastive_weight=weights[1], kl_weight=weights[2])
    model = ContrastiveAutoencoder(ModelConfig(latent_dim=8, width=8, variant=variant))
    objective = CAEObjective(loss_cfg, ContrastiveAugment(AugmentConfig()))
    loss, logs = objective(model, (torch.rand(6, 1, 28, 28),), torch.Generator().manual_seed(0))
    assert expected_terms <= set(logs) and not ({"recon", "contrastive", "kl"} - expected_terms) & set(logs)
    w = dict(recon=weights[0], contrastive=weights[1], kl=weights[2])
    assert loss.item() == pytest.approx(sum(w[t] * logs[t] for t in expected_terms), rel=1e-5)
    loss.backward()  # differentiable end to end


def test_objective_kl_needs_vae():
    model = ContrastiveAutoencoder(ModelConfig(latent_dim=4, width=4, variant="ae"))
    objective = CAEObjective(LossConfig(kl_weight=1.0), ContrastiveAugment())
    with pytest.raises(ValueError, match="variational"):
        objective(model, (torch.rand(4, 1, 28, 28),), torch.Generator().manual_seed(0))


def test_chance_value():
    assert CAEObjective.chance_ntxent(256) == pytest.approx(math.log(511))
    # and it is what NT-Xent gives for uninformative embeddings
    assert NTXentLoss(0.5)(torch.ones(256, 2), torch.ones(256, 2)).item() == pytest.approx(math.log(511), rel=1e-5)


@pytest.mark.parametrize("recon_views", [1, 2])
def test_objective_reconstructs_the_views_it_is_told_to(recon_views):
    """The recon term against a by-hand oracle; the decoder sees only the rows it reconstructs."""
    torch.manual_seed(0)
    model = ContrastiveAutoencoder(ModelConfig(latent_dim=8, width=8)).eval()  # eval: BatchNorm per image, so rows are independent
    augment = ContrastiveAugment(AugmentConfig())
    objective = CAEObjective(LossConfig(recon_views=recon_views), augment)
    rows_decoded = []
    model.decoder.register_forward_hook(lambda module, inputs, output: rows_decoded.append(inputs[0].shape[0]))
    x = torch.rand(5, 1, 28, 28)
    _, logs = objective(model, (x,), torch.Generator().manual_seed(3))
    v1, v2 = augment.two_views(x, torch.Generator().manual_seed(3))  # the same views again
    targets = torch.cat([v1, v2]) if recon_views == 2 else v1
    with torch.no_grad():
        expected = ((model.decode(model.encode(targets)[0]) - targets) ** 2).mean().item()
    assert rows_decoded[0] == 5 * recon_views
    assert logs["recon"] == pytest.approx(expected, rel=1e-5)


def test_objective_without_reconstruction_skips_the_decoder():
    model = ContrastiveAutoencoder(ModelConfig(latent_dim=8, width=8))
    calls = []
    model.decoder.register_forward_hook(lambda *args: calls.append(1))
    objective = CAEObjective(LossConfig(recon_weight=0.0), ContrastiveAugment())
    loss, logs = objective(model, (torch.rand(4, 1, 28, 28),), torch.Generator().manual_seed(0))
    loss.backward()
    assert calls == [] and set(logs) >= {"contrastive"} and "recon" not in logs
    assert all(p.grad is None for p in model.decoder.parameters())


def test_recon_views_is_validated_and_old_configs_mean_both_views():
    with pytest.raises(ValueError, match="recon_views must be 1"):
        LossConfig(recon_views=3).validate()
    from cae_lib.config import CAEConfig

    saved = CAEConfig().to_dict()
    del saved["loss"]["recon_views"]  # a config saved before the setting existed
    assert CAEConfig.from_dict(saved).loss.recon_views == 2
