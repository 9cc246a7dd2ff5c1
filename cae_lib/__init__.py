"""cae-lib: contrastive autoencoders for unsupervised medical-image clustering.

A teaching toolkit that reproduces and extends Ferrante et al., *Contrastive learning
for unsupervised medical image clustering and reconstruction* (NLDL 2023, arXiv 2209.12005).

Where things live (one module per idea):

- ``cae_lib.data``        datasets (MedMNIST 2D, ``digits``, your own folder / npz), download, memory maps;
  ``cae_lib.batches`` is the one way a batch is built (uint8 -> float, the seeded shuffle)
- ``cae_lib.augment``     batched two-view contrastive augmentation on tensors
- ``cae_lib.config``      dataclass configs, saved as JSON next to every checkpoint and result
- ``cae_lib.models``      encoder, decoder, projection head, the AE / VAE variants
- ``cae_lib.losses``      NT-Xent, reconstruction, KL, and the weighted CAE objective
- ``cae_lib.trainer``     a model-agnostic training loop with callbacks, history, early stopping / best epoch
- ``cae_lib.schedule``    the learning-rate schedule (warm-up, then a half-cosine decay)
- ``cae_lib.memory``      keeps freed memory for the next training step (no page faults; glibc only)
- ``cae_lib.distributed`` several processes with ``torchrun``: gathered NT-Xent negatives, synchronised BatchNorm
- ``cae_lib.checkpoint``  atomic save / load / resume; records where the training data came from
- ``cae_lib.run_folder``  one folder per run, locked while a run writes to it, never silently reused
- ``cae_lib.embed``       latent extraction (eval mode, no grad)
- ``cae_lib.experiment``  recipes: train a CAE from a config, load the shipped checkpoint or train
- ``cae_lib.course``      the steps the course notebooks share, one call each (data, config, load or train, tables)
- ``cae_lib.pretrained``  shipped checkpoints (PneumoniaMNIST, BreastMNIST) with model cards
- ``cae_lib.cluster``     k-means / GMM / agglomerative on latents (a scikit-learn estimator), choosing k, over-clustering
- ``cae_lib.metrics``     Hungarian accuracy, majority-vote accuracy, NMI, ARI, floors
- ``cae_lib.probes``      kNN and linear-probe evaluation
- ``cae_lib.evaluate``    the evaluation protocol (choices made on val, numbers on test)
- ``cae_lib.baselines``   supervised ResNet-18 (transfer or from scratch) and same-backbone models
- ``cae_lib.sampling``    latent samplers that decode new labelled images, explorers, quality checks
- ``cae_lib.comparison``  the comparison table: its methods, one run of a row, pixel baselines, reference numbers
- ``cae_lib.plots``       figure functions (each returns a ``matplotlib.figure.Figure``)
- ``cae_lib.widgets``     ipywidgets front-ends for the notebooks
- ``cae_lib.commands``    one module per command, named after it: ``datasets``, ``train``, ``evaluate``,
  ``benchmark`` (the table over seeds), ``sample`` (image grid + MedMNIST-layout npz),
  ``augment_benchmark`` (the augmentation experiment), ``demo`` (the main job, ``make demo``)
- ``cae_lib.cli``         ``python -m cae_lib ...``: dispatches to ``cae_lib.commands``
- ``cae_lib.utils``       seeding, device choice, atomic writes, progress bars, peak memory
"""

__version__ = "0.1.0"
