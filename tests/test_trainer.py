"""The training loop, checkpoints, resumption and embedding extraction."""

import json

import numpy as np
import pytest
import torch

from cae_lib.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from cae_lib.config import CAEConfig, ModelConfig, TrainConfig
from cae_lib.embed import embed
from cae_lib.losses import CAEObjective, NTXentLoss
from cae_lib.models import ContrastiveAutoencoder
from cae_lib.schedule import learning_rate
from cae_lib.batches import ImageBatches
from cae_lib.run_trainer import RunTrainer, TrainingDiverged, native_bf16
from cae_lib.trainer import Trainer
from cae_lib.weight_average import WeightAverage


def tiny_config(epochs: int = 2) -> CAEConfig:
    cfg = CAEConfig(dataset="synthetic")
    cfg.model = ModelConfig(latent_dim=8, width=4)
    cfg.train = TrainConfig(epochs=epochs, batch_size=16, lr=1e-2, seed=3, device="cpu")
    return cfg


def tiny_data(n: int = 48, seed: int = 0) -> ImageBatches:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = (rng.random((n, 28, 28)) * 80 + labels[:, None, None] * 120).astype(np.uint8)
    return ImageBatches(images, labels)


def make_trainer(cfg: CAEConfig, **kw) -> RunTrainer:
    torch.manual_seed(cfg.train.seed)
    model = ContrastiveAutoencoder(cfg.model)
    return RunTrainer(model, CAEObjective.from_config(cfg), tiny_data(), cfg.train, progress=False, **kw)


def test_image_batches_keep_uint8_and_convert_per_batch():
    data = tiny_data()
    assert data.images.dtype == np.uint8 and data.images.shape == (48, 28, 28)  # kept as given, MedMNIST layout
    x, y = data.get_batch(torch.tensor([0, 5]))
    assert x.dtype == torch.float32 and x.shape == (2, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    rgb = ImageBatches(np.zeros((4, 28, 28, 3), np.uint8), np.zeros(4))
    assert rgb.get_batch(torch.tensor([0]))[0].shape == (1, 3, 28, 28)


def test_history_has_every_term_and_training_learns():
    cfg = tiny_config(epochs=4)
    trainer = make_trainer(cfg, val_data=tiny_data(32, seed=1))
    history = trainer.fit()
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    for key in ("loss", "recon", "contrastive", "top1", "top5", "val_loss", "images_per_sec"):
        assert key in history[-1]
    assert history[-1]["recon"] < history[0]["recon"]


def test_same_seed_same_run():
    h1 = make_trainer(tiny_config()).fit()
    h2 = make_trainer(tiny_config()).fit()
    assert [h["loss"] for h in h1] == [h["loss"] for h in h2]


def test_callbacks_and_early_stopping():
    cfg = tiny_config(epochs=10)
    cfg.train.early_stopping_patience = 1
    cfg.train.lr = 0.0  # nothing improves, so it stops after patience + 1 epochs
    seen = []
    trainer = make_trainer(cfg, val_data=tiny_data(32, seed=1), callbacks=[lambda t, logs: seen.append(logs["epoch"])])
    history = trainer.fit()
    assert len(history) == 2 and seen == [1, 2]


def test_nan_loss_stops_with_a_clear_message():
    cfg = tiny_config()

    def bad_objective(model, batch, g):
        loss, logs = CAEObjective.from_config(cfg)(model, batch, g)
        logs["recon"] = float("nan")
        return loss * float("nan"), logs

    trainer = RunTrainer(ContrastiveAutoencoder(cfg.model), bad_objective, tiny_data(), cfg.train, progress=False)
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 0.*recon"):
        trainer.fit()


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    cfg = tiny_config()
    trainer = make_trainer(cfg)
    history = trainer.fit()
    path = save_checkpoint(tmp_path / "m.pt", trainer.model, cfg, history)
    assert json.loads(path.with_suffix(".json").read_text())["config"] == cfg.to_dict()
    model, cfg2, payload = load_checkpoint(path, expected_dataset="synthetic")
    x = torch.rand(5, 1, 28, 28)
    trainer.model.eval()
    assert torch.equal(model(x).x_hat, trainer.model(x).x_hat)
    assert cfg2 == cfg and payload["history"] == history and payload["version"]


def test_checkpoint_errors(tmp_path):
    cfg = tiny_config()
    path = save_checkpoint(tmp_path / "m.pt", ContrastiveAutoencoder(cfg.model), cfg)
    with pytest.raises(CheckpointError, match="trained on 'synthetic', not 'breastmnist'"):
        load_checkpoint(path, expected_dataset="breastmnist")
    other = tiny_config()
    other.model.latent_dim = 16
    with pytest.raises(CheckpointError, match="architecture"):
        load_checkpoint(path, expected_config=other)
    (tmp_path / "broken.pt").write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="damaged or not a PyTorch file"):
        load_checkpoint(tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def stop_after(epochs: int):
    """A callback that interrupts training after ``epochs`` epochs, as Ctrl-C or a dead Binder kernel would."""

    def callback(trainer: RunTrainer, logs: dict) -> None:
        trainer.state.stop = trainer.state.epoch >= epochs

    return callback


def test_resume_matches_uninterrupted_run(tmp_path):
    full = make_trainer(tiny_config(epochs=4))
    full_history = full.fit()

    first = make_trainer(tiny_config(epochs=4), callbacks=[stop_after(2)])
    first.fit()  # interrupted after 2 of 4 epochs, half-way down the learning-rate schedule
    assert len(first.state.history) == 2
    path = save_checkpoint(tmp_path / "m.pt", first.model, tiny_config(epochs=4), first.state.history, first.state_dict())

    model, _, payload = load_checkpoint(path)
    resumed = RunTrainer(model, CAEObjective.from_config(tiny_config()), tiny_data(), tiny_config(epochs=4).train, progress=False)
    resumed.load_state_dict(payload["trainer_state"])
    resumed_history = resumed.fit()
    assert [h["loss"] for h in resumed_history] == pytest.approx([h["loss"] for h in full_history], rel=1e-6)
    assert [h["lr"] for h in resumed_history] == [h["lr"] for h in full_history]
    for a, b in zip(resumed.model.state_dict().values(), full.model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)


def test_learning_rate_follows_the_schedule_step_by_step():
    seen = []
    cfg = tiny_config(epochs=3)  # 48 images in batches of 16: 3 steps per epoch, 9 in all
    cfg.train.warmup_fraction = 0.25  # round(2.25) = 2 warm-up steps
    trainer = make_trainer(cfg)
    original = trainer.optimizer.step

    def step(*args, **kwargs):
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        return original(*args, **kwargs)

    trainer.optimizer.step = step
    trainer.fit()
    assert trainer.total_steps == 9 and len(seen) == 9
    assert seen == pytest.approx([learning_rate(s, 9, cfg.train.lr, "cosine", cfg.train.warmup_fraction) for s in range(9)])
    assert seen[0] == pytest.approx(cfg.train.lr / 2) and seen[1] == seen[2] == pytest.approx(cfg.train.lr)  # warm-up
    assert seen[-1] < 0.05 * cfg.train.lr  # then the decay


def test_precision_auto_is_resolved_and_recorded():
    trainer = make_trainer(tiny_config(epochs=1))
    assert trainer.config.precision == ("bf16" if native_bf16("cpu") else "fp32")
    assert trainer.autocast_dtype == (torch.bfloat16 if native_bf16("cpu") else None)
    history = trainer.fit()
    assert all(np.isfinite(h["loss"]) for h in history)


def test_bf16_autocast_trains_and_keeps_the_losses_in_fp32():
    cfg = tiny_config(epochs=4)
    cfg.train.precision = "bf16"  # emulated where the CPU has no native bf16: slower, same numbers
    trainer = make_trainer(cfg)
    history = trainer.fit()
    assert history[-1]["recon"] < history[0]["recon"]
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # master weights stay fp32
    x = torch.rand(6, 1, 28, 28)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = trainer.model(x)
        loss = NTXentLoss(0.5)(out.h[:3], out.h[3:])
    assert out.h.dtype == torch.bfloat16 and loss.dtype == torch.float32


def test_embed_uses_eval_mode_and_restores_it():
    cfg = tiny_config()
    model = ContrastiveAutoencoder(cfg.model)
    images = np.random.default_rng(0).integers(0, 255, (10, 28, 28)).astype(np.uint8)
    model.train()
    z_all = embed(model, images, batch_size=10)
    z_split = np.concatenate([embed(model, images[:3], batch_size=3), embed(model, images[3:], batch_size=7)])
    # In train mode BatchNorm would use batch statistics and the codes would depend on the batching.
    np.testing.assert_allclose(z_all, z_split, rtol=1e-5, atol=1e-6)
    assert model.training  # put back as it was
    assert embed(model, images, space="projection").shape == (10, cfg.model.latent_dim)
    with torch.no_grad():
        model.train()
        mu_train, _ = model.encode(torch.from_numpy(images).float().div(255).unsqueeze(1))
    assert not np.allclose(mu_train.numpy(), z_all, atol=1e-4)  # the bug the test guards against is real


def test_keep_best_restores_the_best_epoch_and_early_stopping_shares_it():
    """One mechanism: the monitored quantity decides both the kept weights and when to stop."""
    cfg = tiny_config(epochs=6)
    cfg.train.early_stopping_patience = 2
    scores = iter([0.5, 0.9, 0.7, 0.6, 0.95, 0.99])  # best at epoch 2; epochs 3 and 4 do not improve
    snapshots = {}

    def validate(model):
        snapshots[len(snapshots) + 1] = {k: v.clone() for k, v in model.state_dict().items()}
        return {"val_acc": next(scores)}

    trainer = make_trainer(cfg, validate=validate, monitor="val_acc", mode="max", keep_best=True)
    history = trainer.fit()
    assert [h["val_acc"] for h in history] == [0.5, 0.9, 0.7, 0.6]  # stopped after 2 epochs without improvement
    assert trainer.state.best_epoch == 2 and trainer.state.best_val == 0.9
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, snapshots[2][k]), k
    with pytest.raises(ValueError, match="mode"):
        make_trainer(cfg, mode="biggest")


def test_weight_average_matches_a_numpy_oracle_step_by_step():
    model = torch.nn.Linear(3, 1)
    with torch.no_grad():
        model.weight.fill_(0.0)
    average = WeightAverage(model, decay=0.9)
    expected, ws, rng = np.zeros(3), [], np.random.default_rng(0)
    for t in range(40):
        w = rng.normal(size=3)
        with torch.no_grad():
            model.weight.copy_(torch.tensor(w[None], dtype=torch.float32))
        average.update(model)
        ws.append(w)
        # The rule written out independently: the plain mean while t / (t + 1) < 0.9 (t <= 8), then EMA.
        expected = np.mean(ws, axis=0) if t < 9 else 0.9 * expected + 0.1 * w
    assert average.current_decay() == 0.9
    np.testing.assert_allclose(average.average["weight"].numpy()[0], expected, rtol=1e-5, atol=1e-6)
    average.copy_to(model)
    np.testing.assert_allclose(model.weight.detach().numpy()[0], expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        WeightAverage(model, decay=1.0)


def test_weight_average_ends_the_run_and_resumes_exactly(tmp_path):
    def cfg(epochs=4):
        c = tiny_config(epochs)
        c.train.ema_decay = 0.8
        return c

    plain = make_trainer(tiny_config(epochs=4))
    plain.fit()
    full = make_trainer(cfg())
    full.fit()
    # The final model is the average; the same run without it ends elsewhere.
    assert all(torch.equal(v, full.weight_average.average[k]) for k, v in full.model.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(full.model.state_dict().values(), plain.model.state_dict().values()))

    first = make_trainer(cfg(), callbacks=[stop_after(2)])
    first.fit()  # an interruption keeps the current weights, so resuming continues from them
    assert not first.finished and first.weight_average.updates == first.state.step
    assert any(not torch.equal(v, first.weight_average.average[k]) for k, v in first.model.state_dict().items() if v.is_floating_point())
    path = save_checkpoint(tmp_path / "m.pt", first.model, cfg(), first.state.history, first.state_dict())
    model, _, payload = load_checkpoint(path)
    resumed = RunTrainer(model, CAEObjective.from_config(cfg()), tiny_data(), cfg().train, progress=False)
    resumed.load_state_dict(payload["trainer_state"])
    resumed.fit()
    assert resumed.finished
    for a, b in zip(resumed.model.state_dict().values(), full.model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)


def test_ema_decay_is_checked():
    with pytest.raises(ValueError, match="ema_decay must be in"):
        TrainConfig(ema_decay=1.5).validate()


def test_a_run_with_a_weight_average_saves_the_averaged_model(tmp_path):
    """The per-epoch checkpoint is written before the average is swapped in; the final one must hold it."""
    from cae_lib.experiment import train_cae, training_data

    cfg = CAEConfig(dataset="digits")
    cfg.model = ModelConfig(latent_dim=8, width=4)
    cfg.train = TrainConfig(epochs=2, batch_size=64, seed=1, device="cpu", ema_decay=0.8)
    cfg, train, val = training_data(cfg)
    model, _, path = train_cae(cfg, train, val, out=tmp_path / "run", progress=False)
    saved, _, payload = load_checkpoint(path)
    average = payload["trainer_state"]["weight_average"]["average"]
    for name, value in model.state_dict().items():
        assert torch.equal(saved.state_dict()[name], value) and torch.equal(average[name], value), name


def test_a_run_that_stopped_early_stays_stopped_when_resumed(tmp_path):
    """Early stopping ends the run: resuming its checkpoint must not train on (it used to, up to the epoch budget)."""
    cfg = tiny_config(epochs=6)
    cfg.train.early_stopping_patience = 1
    cfg.train.ema_decay = 0.8
    flat = lambda model: {"val_metric": 0.5}  # noqa: E731  never improves after the first epoch
    first = make_trainer(cfg, validate=flat, monitor="val_metric", mode="max")
    first.fit()
    assert len(first.state.history) == 2 and first.state.stopped_early and first.finished
    path = save_checkpoint(tmp_path / "m.pt", first.model, cfg, first.state.history, first.state_dict())
    model, _, payload = load_checkpoint(path)
    resumed = RunTrainer(model, CAEObjective.from_config(cfg), tiny_data(), cfg.train, progress=False, validate=flat, monitor="val_metric", mode="max")
    resumed.load_state_dict(payload["trainer_state"])
    assert len(resumed.fit()) == 2 and resumed.state.step == first.state.step
    for a, b in zip(resumed.model.state_dict().values(), first.model.state_dict().values()):
        assert torch.equal(a, b)  # the averaged weights, not averaged a second time


def test_the_core_trainer_and_the_run_trainer_train_the_same_weights():
    """One process, fp32, no weight average: RunTrainer adds nothing to the computation,
    so the core loop a student reads is the loop that trained the shipped models."""
    weights, histories = [], []
    for cls in (Trainer, RunTrainer):
        cfg = tiny_config(epochs=2)
        cfg.train.precision = "fp32"  # the model keeps its own layout (channels last) under both
        torch.manual_seed(cfg.train.seed)
        model = ContrastiveAutoencoder(cfg.model)
        histories.append(cls(model, CAEObjective.from_config(cfg), tiny_data(), cfg.train, val_data=tiny_data(seed=1), progress=False).fit())
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert [h["loss"] for h in histories[0]] == [h["loss"] for h in histories[1]]
    assert histories[0][-1]["val_loss"] == histories[1][-1]["val_loss"]
