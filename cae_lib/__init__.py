"""cae-lib: contrastive autoencoders for unsupervised medical-image clustering.

A teaching toolkit that reproduces and extends Ferrante et al., *Contrastive learning
for unsupervised medical image clustering and reconstruction* (NLDL 2023, arXiv 2209.12005).

Where things live (one module per idea; the full table is in ``docs/design.md``).

The method's core, which imports nothing of the run machinery below it:

- ``cae_lib.batches``     the one way a batch is built (uint8 -> float, the seeded shuffle)
- ``cae_lib.augment``     batched two-view contrastive augmentation on tensors
- ``cae_lib.models``      encoder, decoder, projection head, the AE / VAE variants
- ``cae_lib.losses``      NT-Xent, reconstruction, KL, and the weighted CAE objective
- ``cae_lib.trainer``     a model-agnostic training loop with callbacks, history, early stopping / best epoch
- ``cae_lib.schedule``    the learning-rate schedule (warm-up, then a half-cosine decay)
- ``cae_lib.embed``       latent extraction (eval mode, no grad)
- ``cae_lib.cluster``     k-means / GMM / agglomerative / spectral / SCAN on latents, choosing k, over-clustering
- ``cae_lib.metrics``     Hungarian accuracy, majority-vote accuracy, NMI, ARI, floors
- ``cae_lib.utils``       seeding, device choice, progress bars

The run machinery:

- ``cae_lib.run_trainer`` the trainer as a run uses it: several processes, mixed precision, weight average, NaN check
- ``cae_lib.distributed`` several processes with ``torchrun``; ``cae_lib.memory``: glibc's memory settings
- ``cae_lib.config``      ``CAEConfig``, saved as JSON next to every checkpoint and result; ``preset``
- ``cae_lib.experiment``  train a CAE from a config and loaded data, load the shipped model or train, recipes
- ``cae_lib.checkpoint``  atomic save / load / resume; ``cae_lib.run_folder``: one locked folder per run
- ``cae_lib.files``       atomic writes; ``cae_lib.machine``: CPU threads, environment checks, peak memory
- ``cae_lib.data``        datasets (MedMNIST 2D, ``digits``, your own folder / npz), download, memory maps
- ``cae_lib.probes``, ``cae_lib.evaluate``   kNN and linear probes; the evaluation protocol
- ``cae_lib.baselines``, ``cae_lib.sampling``, ``cae_lib.comparison``   supervised baselines, latent samplers, the comparison table
- ``cae_lib.plots``, ``cae_lib.widgets``, ``cae_lib.course``   figures, notebook widgets, the steps the notebooks share
- ``cae_lib.commands``, ``cae_lib.cli``   one module per command; ``python -m cae_lib ...``
- ``cae_lib.pretrained``  shipped checkpoints (PneumoniaMNIST, BreastMNIST) with model cards
"""

__version__ = "0.1.0"
