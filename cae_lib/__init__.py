"""cae-lib: contrastive autoencoders for unsupervised medical-image clustering.

A teaching toolkit that reproduces and extends Ferrante et al., *Contrastive learning
for unsupervised medical image clustering and reconstruction* (NLDL 2023, arXiv 2209.12005).

Where things live (one module per idea):

- ``cae_lib.data``        datasets (MedMNIST 2D, ``digits``, your own folder / npz), download, loaders
- ``cae_lib.augment``     batched two-view contrastive augmentation on tensors
- ``cae_lib.config``      dataclass configs, saved as JSON next to every checkpoint and result
- ``cae_lib.models``      encoder, decoder, projection head, the AE / VAE variants
- ``cae_lib.losses``      NT-Xent, reconstruction, KL, and the weighted CAE objective
- ``cae_lib.trainer``     a model-agnostic training loop with callbacks and history
- ``cae_lib.checkpoint``  atomic save / load / resume
- ``cae_lib.embed``       latent extraction (eval mode, no grad)
- ``cae_lib.experiment``  recipes: train a CAE from a config, load the shipped checkpoint or train
- ``cae_lib.cluster``     k-means / GMM / agglomerative on latents, choosing k, over-clustering
- ``cae_lib.metrics``     Hungarian accuracy, majority-vote accuracy, NMI, ARI, floors
- ``cae_lib.probes``      kNN and linear-probe evaluation
- ``cae_lib.evaluate``    the evaluation protocol (choices made on val, numbers on test)
- ``cae_lib.baselines``   supervised ResNet-18 (transfer or from scratch) and same-backbone models
- ``cae_lib.sampling``    latent samplers that decode new labelled images
- ``cae_lib.generate``    the ``sample`` command (image grid + MedMNIST-layout npz)
- ``cae_lib.benchmark``   the comparison table over seeds; ``cae_lib.augment_benchmark`` the augmentation experiment
- ``cae_lib.report``      the main job (``make demo``): report folder with metrics and figures
- ``cae_lib.plots``       figure functions (each returns a ``matplotlib.figure.Figure``)
- ``cae_lib.widgets``     ipywidgets front-ends for the notebooks
- ``cae_lib.cli``         ``python -m cae_lib ...``
- ``cae_lib.utils``       seeding, device choice, atomic writes, progress bars, peak memory
"""

__version__ = "0.1.0"
