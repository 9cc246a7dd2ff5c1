"""The learning-rate schedule against values worked out by hand, the precision setting, and old configs keeping their meaning."""

import math

import pytest

from cae_lib.config import CAEConfig, TrainConfig
from cae_lib.run_trainer import resolve_precision
from cae_lib.schedule import learning_rate


def test_cosine_schedule_by_hand():
    # 20 steps, 10 % warm-up = 2 steps: 0.5, 1.0 of the peak; then (1 + cos(pi * t)) / 2 with t = (s - 2) / 18.
    rates = [learning_rate(s, 20, 2.0, "cosine", 0.1) for s in range(20)]
    assert rates[:2] == pytest.approx([1.0, 2.0])
    assert rates[2] == pytest.approx(2.0)  # t = 0
    assert rates[11] == pytest.approx(1.0)  # t = 1/2: half the peak
    assert rates[19] == pytest.approx(2.0 * (1 + math.cos(math.pi * 17 / 18)) / 2)
    assert all(a >= b for a, b in zip(rates[2:], rates[3:]))  # decays monotonically after the warm-up
    assert learning_rate(25, 20, 2.0) == 0.0  # past the end (a resumed run given more epochs): stays at 0


def test_constant_schedule_and_no_warmup():
    assert {learning_rate(s, 7, 0.3, "constant") for s in range(7)} == {0.3}
    assert learning_rate(0, 10, 1.0, "cosine", warmup_fraction=0.0) == pytest.approx(1.0)


def test_bad_schedule_settings_are_refused():
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'linear'"):
        learning_rate(0, 10, 1.0, "linear")
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        CAEConfig(train=TrainConfig(schedule="step")).validate()
    with pytest.raises(ValueError, match="warmup_fraction"):
        CAEConfig(train=TrainConfig(warmup_fraction=1.0)).validate()


def test_saved_configs_from_before_the_schedule_keep_their_meaning():
    old = CAEConfig().to_dict()
    for key in ("schedule", "warmup_fraction", "precision"):
        del old["train"][key]
    loaded = CAEConfig.from_dict(old)
    assert loaded.train.schedule == "constant" and loaded.train.precision == "fp32"
    assert CAEConfig.from_dict(CAEConfig().to_dict()).train.schedule == "cosine"  # a new config round-trips


def test_a_checkpoint_trained_with_auto_precision_matches_auto_anywhere():
    """The shipped checkpoint records "bf16"; a notebook asking for "auto" on a CPU without bf16 must still load it."""
    from cae_lib.experiment import same_settings

    stored, wanted = CAEConfig(), CAEConfig()
    stored.train.precision = "bf16"  # what "auto" resolved to where it trained
    assert same_settings(stored, wanted) and same_settings(wanted, stored)
    wanted.train.precision = "fp32"  # an explicit request is a different setting
    assert not same_settings(stored, wanted)
    wanted.train.precision, wanted.train.schedule = "auto", "constant"
    assert not same_settings(stored, wanted)


def test_a_saved_amp_flag_still_means_fp16_and_precision_resolves_per_device():
    train = {"amp": True, "precision": "auto"}
    cfg = CAEConfig.from_dict({"train": train})
    assert cfg.train.precision == "fp16" and "amp" not in cfg.to_dict()["train"]
    assert CAEConfig.from_dict({"train": {"amp": False}}).train.precision == "fp32"  # a config that old means fp32
    assert resolve_precision("fp16", "cuda") == "fp16" and resolve_precision("fp16", "cpu") == "fp32"  # fp16 autocast needs CUDA
    assert resolve_precision("fp32", "cpu") == "fp32"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp8", "cpu")