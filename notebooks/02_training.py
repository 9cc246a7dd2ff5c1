# %% [markdown]
# # 2. Training the contrastive autoencoder
#
# *cae-lib course, notebook 2 of 6.* We set up the model of Ferrante et al. (*Contrastive learning
# for unsupervised medical image clustering and reconstruction*, NLDL 2023, arXiv 2209.12005): an
# autoencoder whose latent code is shaped by two forces at once. The **reconstruction** loss asks
# the code to keep enough of the image to redraw it; the **contrastive** (NT-Xent) loss asks it to
# recognise two augmented views of the same image among all other images in the batch.
#
# **In this notebook you will learn**
#
# * what each loss term measures, and what its value is *before* learning: NT-Xent at chance is
#   `log(2N - 1)`, and we compute it;
# * the extra KL term of the variational variant;
# * how to load the shipped checkpoint, or train when none matches ("load if it exists, else train");
# * how to read the loss curves and the **positive-pair top-1 accuracy** (more telling than a loss value);
# * what the reconstructions look like, and (with `TRAIN_PLAIN_AE = True`) how a plain autoencoder compares.
#
# **Runtime:** under 10 seconds on one CPU core when the shipped checkpoint matches your settings.
# Training from scratch (another dataset, or changed settings) takes about 40 seconds for
# PneumoniaMNIST on one core with bf16 (171 optimisation steps, 9 epochs; about a minute, 62 s
# measured, on a CPU without native bf16), and `TRAIN_PLAIN_AE = True` adds as much again. Measured runtimes and peak memory of every notebook (one CPU core, default parameters) are in [`runtimes.json`](runtimes.json).
#
# **What you should see:** an untrained model already near the chance value of NT-Xent (6.24 for
# N = 256); during training the contrastive loss falling clearly below it (to about 4.7 with the
# defaults) and the top-1 accuracy rising from about 0.002 (chance) to about 0.09, some 45 times
# chance; blurry but recognisable reconstructions.

# %% tags=["parameters"]
# Parameters. Change a value and rerun the notebook (papermill and the tests override this cell).
DATASET = "pneumoniamnist"  # any 2D MedMNIST name ("breastmnist", "bloodmnist", ...), "digits", or a path to your data
DATA_DIR = None             # folder with the MedMNIST .npz files; None: $CAE_DATA_DIR, then ~/.cache/cae_lib/medmnist
SEED = 0
FAST = False                # True: tiny settings so the notebook runs in seconds (automated tests); numbers mean nothing
EPOCHS = None               # None: the library default (enough epochs for 160 optimisation steps; 9 on PneumoniaMNIST)
LATENT_DIM = 32             # the shipped checkpoint was trained with these defaults:
TEMPERATURE = 0.2           # change one and the notebook trains a new model (about 40 s on one CPU core)
BATCH_SIZE = 256            # also part of the checkpoint's config
RETRAIN = False             # True: train even when a matching checkpoint exists
TRAIN_PLAIN_AE = False      # True: also train the plain AE (contrastive weight 0) to compare (as long as the CAE)

# %%
# FAST mode (the automated tests) only checks that every cell runs: the library trains for one epoch
# on a few hundred images (cae_lib.course.FAST_SIZES), in smaller batches.
if FAST:
    BATCH_SIZE = 128

# %%
import copy
import json
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from cae_lib import plots
from cae_lib.cluster import cluster_latents
from cae_lib.course import cae_config, load_course_data, load_or_train_cae, runs_dir
from cae_lib.embed import embed, reconstruct
from cae_lib.experiment import find_pretrained
from cae_lib.losses import CAEObjective, NTXentLoss
from cae_lib.metrics import hungarian_accuracy, majority_class_floor
from cae_lib.models import ContrastiveAutoencoder, count_parameters
from cae_lib.tables import markdown_table

RUNS = runs_dir()  # trained models go here (git-ignored), so the other notebooks can load them
plt.rcParams["figure.dpi"] = 80  # small figures keep the saved notebook light

# %%
# The official train / val / test splits (images kept as uint8), and `fit`: the training images that
# models are fitted on (all of train, unless FAST).
train, val, test, fit = load_course_data(DATASET, DATA_DIR, SEED, fast=FAST)
names = list(train.class_names)
print(train, val, test, sep="\n")

# %% [markdown]
# ## 1. The configuration
#
# Every setting lives in one dataclass, `CAEConfig`, which is saved as JSON next to every checkpoint:
# any figure can be traced back to the settings that made it. `cae_config` starts from
# `preset("cae")`, the paper's model (reconstruction weight 1, contrastive weight 1), copies the
# number of channels and the image size from the data (so the same code handles grey and RGB
# images), and sets this notebook's parameters.

# %%
cfg = cae_config(train, DATASET, "cae", latent_dim=LATENT_DIM, temperature=TEMPERATURE, epochs=EPOCHS, seed=SEED,
                 batch_size=BATCH_SIZE, fast=FAST)
print(json.dumps(cfg.to_dict(), indent=1))

# %%
untrained = ContrastiveAutoencoder(cfg.model)
print(untrained)
print(f"{count_parameters(untrained):,} trainable parameters")

# %% [markdown]
# The encoder maps an image `x` to a code `z` of `LATENT_DIM` numbers; the decoder maps `z` back to
# an image; a small **projection head** `g` maps `z` to `h = g(z)`, and only `h` enters the
# contrastive loss (as in SimCLR: the head can throw away what the loss does not need, so `z` keeps
# more). Clustering later uses `h` as the network outputs it: a choice made once, on the validation
# splits of many training runs (notebook 04 shows the other candidates).
#
# ## 2. The loss, term by term
#
# For a batch of N images, `CAEObjective` makes two augmented views of each (2N views), passes them
# through the model and combines
#
# `loss = recon_weight * reconstruction + contrastive_weight * NT-Xent (+ kl_weight * KL for the VAE)`
#
# * **Reconstruction:** the mean squared error per pixel between each view and its reconstruction.
#   It keeps the code *informative*: you can only redraw what the code remembers.
# * **NT-Xent** (SimCLR, eq. 1): for view i with partner j, `-log( exp(sim(i,j)/tau) / sum_(k != i) exp(sim(i,k)/tau) )`,
#   a softmax classification of the partner among the 2N - 1 other views, with cosine similarity
#   and temperature `tau`. It makes the code *invariant* to the augmentations and spreads different
#   images apart.
#
# If the network could not tell views apart, every candidate would be equally likely and the loss
# would be `-log(1 / (2N - 1)) = log(2N - 1)`. That is the **chance value**: a loss near it means
# nothing has been learned yet.

# %%
n = min(BATCH_SIZE, len(train))
chance = CAEObjective.chance_ntxent(n)
print(f"batch of N = {n} images -> 2N = {2 * n} views; NT-Xent at chance = log(2N - 1) = log({2 * n - 1}) = {chance:.3f}")
print(f"chance top-1 accuracy (the partner ranked first among 2N - 1 candidates) = 1/{2 * n - 1} = {1 / (2 * n - 1):.4f}")

# %% [markdown]
# ### NT-Xent in plain torch
#
# The equation above is a few lines of torch. Here it is written out once, so you can see every
# step; the library's `NTXentLoss` (in `cae_lib/losses.py`) computes the same number, and adds the
# shape checks, fp32 similarities under mixed precision and the negatives of other processes. The
# cell checks that the two agree on random codes.

# %%
def nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """z1, z2: (N, D), the codes of the two views of N images -> the NT-Xent loss averaged over the 2N views."""
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)  # (2N, D), unit length: z @ z.T is the cosine similarity
    similarity = z @ z.T / tau                                      # (2N, 2N)
    similarity.fill_diagonal_(float("-inf"))                        # a view is not a candidate for itself
    n = len(z1)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])  # view i's partner is i + N (first views) or i - N
    return torch.nn.functional.cross_entropy(similarity, partner)   # -log softmax of the partner, mean over 2N views


codes = torch.randn(2, 64, LATENT_DIM, generator=torch.Generator().manual_seed(SEED))  # two views of 64 "images"
by_hand, library = nt_xent(codes[0], codes[1], TEMPERATURE), NTXentLoss(TEMPERATURE)(codes[0], codes[1])
print(f"by hand {by_hand:.6f}   NTXentLoss {library:.6f}   chance log(2N - 1) = {math.log(2 * 64 - 1):.6f}")
assert torch.allclose(by_hand, library), "the two should agree"

# %% [markdown]
# Let's measure every term on one batch with the untrained model. The objective returns the same
# numbers the trainer logs: `recon`, `contrastive`, and the positive-pair accuracies `top1` / `top5`.

# %%
objective = CAEObjective.from_config(cfg)
batch = (train.to_tensor(np.arange(n)), train.labels_tensor(np.arange(n)))
with torch.no_grad():
    _, logs = objective(untrained, batch, torch.Generator().manual_seed(SEED))
print({k: round(v, 4) for k, v in logs.items()})

# %% [markdown]
# The untrained NT-Xent lands close to the chance value (a little above or below it: the random
# network's similarities are not all equal, but they carry no information about which view belongs
# to which image), and top-1 is about 1/(2N - 1). Training has to move both far from chance.
#
# **The variational variant** (`preset("vae")`, or `"cvae"` with the contrastive term) encodes a
# mean `mu` and a log-variance for each image, samples `z = mu + sigma * eps`, and adds the
# Kullback-Leibler divergence to the prior N(0, I) in closed form (Kingma & Welling 2014,
# Appendix B): `KL = -1/2 * sum(1 + log sigma^2 - mu^2 - sigma^2)`. `cae_lib` divides it by the
# number of pixels so that it sits on the same per-pixel scale as the reconstruction term.

# %%
vae_cfg = cae_config(train, DATASET, "cvae", latent_dim=LATENT_DIM, temperature=TEMPERATURE)
torch.manual_seed(SEED)
with torch.no_grad():
    _, vae_logs = CAEObjective.from_config(vae_cfg)(ContrastiveAutoencoder(vae_cfg.model), batch, torch.Generator().manual_seed(SEED))
print("untrained contrastive VAE:", {k: round(v, 4) for k, v in vae_logs.items()})

# %% [markdown]
# ## 3. Load the shipped model, or train
#
# Training takes about 40 seconds on one CPU core, and still the repository ships a checkpoint trained with the default
# settings. `load_or_train` loads it **only if its stored config equals ours** (otherwise its
# numbers would not belong to our settings), then looks for a model saved by an earlier run of
# this notebook in `runs/notebooks/`, and trains only when neither matches. Retraining is one flag
# away: `RETRAIN = True`.

# %%
shipped = find_pretrained(cfg)
print("shipped checkpoint for these settings:", shipped.name if shipped else "none")
model, history, where = load_or_train_cae(cfg, fit, val, out=RUNS / f"{train.name}_cae", fast=FAST, retrain=RETRAIN)
print("CAE:", where)

# %% [markdown]
# ## 4. Reading the training curves
#
# One panel per loss term (solid: training, dashed: validation), and one for the positive-pair
# accuracy. The top-1 accuracy answers a concrete question: *for what fraction of views is the
# partner the most similar of all 2N - 1 candidates?* Chance is 1/(2N - 1), about 0.002 for N = 256.

# %%
plots.training_curves(history);

# %%
reference = {"contrastive": f"chance log(2N-1) = {chance:.3f}", "top1": f"chance 1/(2N-1) = {1 / (2 * n - 1):.4f}"}
markdown_table([{"quantity": key, "epoch 1": history[0][key], "last epoch": history[-1][key], "reference": reference.get(key, "")}
                for key in ("recon", "contrastive", "top1", "top5", "val_contrastive", "val_top1") if key in history[-1]], digits=4)

# %% [markdown]
# *What to look for:* the contrastive loss should fall clearly below the chance value and top-1
# should climb far above chance. With the defaults on PneumoniaMNIST it ends near 0.09 (top-5 near
# 0.26), not near 1: many chest X-rays in a batch look almost alike at 28 px, and the augmentation
# is deliberately strong (brightness ramps included). If the validation curves (dashed) turn upwards while the training curves
# keep falling, the model is starting to overfit.
#
# ## 5. Reconstructions
#
# Inputs (top) and their reconstructions (bottom), from the **test** split, which the model never saw.

# %%
x = test.to_tensor(np.arange(min(10, len(test))))
plots.reconstructions(x, reconstruct(model, x), n=10);


# %% [markdown]
# The reconstructions are blurry: `LATENT_DIM` numbers cannot hold every pixel, and the contrastive
# term competes for the code's capacity. That is fine: the code is meant to be *useful* (for
# clustering, notebook 4), not to be a perfect compressor. A first taste of usefulness: k-means
# with k = number of classes on the test codes, scored by Hungarian-matched accuracy against the
# floor. This quick version fits k-means on the standardised codes `z` of the test images
# themselves, the same way for any model (the plain AE below has no trained projection), so its
# number is not the protocol's: notebook 4 fits its clusterer (spectral clustering on the kNN graph)
# on the train split's projections `h`, the fixed features, and scores the test split. For the
# shipped PneumoniaMNIST checkpoint the two differ by a few points (its model card gives the
# protocol's number); use this one to compare models here.

# %%
def quick_kmeans(m):
    """Hungarian accuracy of k-means (k = #classes) on the standardised test codes of model m."""
    return hungarian_accuracy(test.labels, cluster_latents(embed(m, test), test.n_classes, preprocess="standardize", seed=SEED))


print(f"CAE: k-means Hungarian accuracy {quick_kmeans(model):.3f} (majority-class floor {majority_class_floor(test.labels):.3f})")

# %% [markdown]
# ## 6. Optional: the plain autoencoder, for comparison
#
# Is the contrastive term worth it? Set `TRAIN_PLAIN_AE = True` in the parameters cell and rerun:
# the cell below trains the **same** model with **one change**, contrastive weight 0, and saves it
# in `runs/notebooks/`, where notebook 3 will find it for a side-by-side look at both latent spaces.

# %%
if TRAIN_PLAIN_AE:
    ae_cfg = copy.deepcopy(cfg)
    ae_cfg.loss.contrastive_weight = 0.0  # the only difference: no NT-Xent term
    ae_model, ae_history, ae_where = load_or_train_cae(ae_cfg, fit, val, out=RUNS / f"{train.name}_ae", fast=FAST,
                                                       retrain=RETRAIN)
    print("plain AE:", ae_where)
    plots.training_curves(ae_history)
    plots.reconstructions(x, reconstruct(ae_model, x), n=10).suptitle("plain AE")
    print(f"plain AE: k-means Hungarian accuracy {quick_kmeans(ae_model):.3f} vs CAE {quick_kmeans(model):.3f} "
          f"(floor {majority_class_floor(test.labels):.3f})")
else:
    print("Skipped. Set TRAIN_PLAIN_AE = True in the parameters cell to train the plain AE for comparison.")

# %% [markdown]
# Typically the plain AE reconstructs at least as well (all of its capacity goes to pixels), while
# its codes cluster worse: it organises images by what dominates the pixels (brightness, size,
# position), which is not necessarily the diagnosis.
#
# **Next:** notebook 3 draws maps of both latent spaces.
