# %% [markdown]
# # 3. Looking at the latent space
#
# *cae-lib course, notebook 3 of 6.* The CAE compresses every image to a code of `LATENT_DIM`
# numbers. We cannot look at 32 dimensions, but we can project them to two and colour each point
# by its true label (which the model never saw) or by its k-means cluster. Comparing the map of the
# CAE with that of a **plain autoencoder** shows what the contrastive term changes.
#
# **In this notebook you will learn**
#
# * PCA (linear, keeps global distances) versus t-SNE (non-linear, keeps neighbourhoods only);
# * how to read a latent map: separated colours mean the classes are *findable without labels*;
# * the difference between the code `z` and the projection `h = g(z)` the contrastive loss acts on;
# * how the plain AE and the CAE differ, in pictures and in two numbers (k-means and kNN accuracy).
#
# **Runtime:** about 20 seconds on one CPU core with the shipped CAE checkpoint: most of it trains
# a quick plain AE (`AE_EPOCHS` epochs on `AE_MAX_TRAIN` images) unless notebook 2 saved a full one
# (`TRAIN_PLAIN_AE = True`), and a few seconds go to each t-SNE. If no shipped or saved model matches your settings, training adds about 40 seconds (PneumoniaMNIST, one core). Measured runtimes and peak memory of every notebook (one CPU core, default parameters) are in [`runtimes.json`](runtimes.json).
#
# **What you should see:** in the CAE maps the two PneumoniaMNIST classes occupy different
# regions, with an overlap; in the plain AE maps they are more mixed. The k-means colours follow
# the labels only roughly: clustering finds *a* structure, not necessarily the diagnosis.

# %% tags=["parameters"]
# Parameters. Change a value and rerun the notebook (papermill and the tests override this cell).
DATASET = "pneumoniamnist"  # any 2D MedMNIST name ("breastmnist", "bloodmnist", ...), "digits", or a path to your data
DATA_DIR = None             # folder with the MedMNIST .npz files; None: $CAE_DATA_DIR, then ~/.cache/cae_lib/medmnist
SEED = 0
FAST = False                # True: tiny settings so the notebook runs in seconds (automated tests); numbers mean nothing
EPOCHS = None               # None: the library default (enough epochs for 160 optimisation steps; 9 on PneumoniaMNIST)
LATENT_DIM = 32             # the shipped checkpoint was trained with these defaults:
TEMPERATURE = 0.2           # change one and the notebook trains a new model (about 40 s on one CPU core)
MAX_POINTS = 1000           # test codes per map (t-SNE time grows quickly with this)
AE_EPOCHS = 3               # the quick plain AE, trained only if notebook 2 saved none
AE_MAX_TRAIN = 1500         # ... on this many training images

# %%
# FAST mode (the automated tests) only checks that every cell runs: the library shrinks the data and
# the training (cae_lib.course.FAST_SIZES); here the maps and the quick plain AE shrink too.
if FAST:
    MAX_POINTS, AE_EPOCHS, AE_MAX_TRAIN = 150, 1, 256

# %%
import copy

import matplotlib.pyplot as plt

from cae_lib import widgets
from cae_lib.checkpoint import load_checkpoint
from cae_lib.cluster import cluster_latents
from cae_lib.course import cae_config, load_course_data, load_or_train_cae, quick_train, runs_dir
from cae_lib.embed import embed
from cae_lib.experiment import pretrained_path
from cae_lib.metrics import hungarian_accuracy, majority_class_floor
from cae_lib.probes import knn_accuracy
from cae_lib.tables import markdown_table

RUNS = runs_dir()  # trained models go here (git-ignored), so the other notebooks can load them
plt.rcParams["figure.dpi"] = 80  # small figures keep the saved notebook light

# %%
# The official train / val / test splits (images kept as uint8), and `fit`: the training images that
# models are fitted on (all of train, unless FAST).
train, val, test, fit = load_course_data(DATASET, DATA_DIR, SEED, fast=FAST)
names = list(train.class_names)
print(train, val, test, sep="\n")

# %%
# The CAE: the shipped checkpoint (or the one notebook 02 saved) when its config matches, else train.
cfg = cae_config(train, DATASET, "cae", latent_dim=LATENT_DIM, temperature=TEMPERATURE, epochs=EPOCHS, seed=SEED, fast=FAST)
model, history, where = load_or_train_cae(cfg, fit, val, out=RUNS / f"{train.name}_cae", fast=FAST)
print("CAE:", where)

# %% [markdown]
# ## 1. A plain autoencoder to compare with
#
# The fair comparison is the same model trained for as long with contrastive weight 0. Notebook 2
# trains and saves it when you set `TRAIN_PLAIN_AE = True` (the repository may also ship one); if
# it is there we load it. Otherwise we train a **quick** one here, on `AE_MAX_TRAIN` images for
# `AE_EPOCHS` epochs, so that this notebook stays fast. Keep in mind that the quick one had much
# less training than the CAE: if it looks worse, part of the reason is that.

# %%
ae_cfg = copy.deepcopy(cfg)
ae_cfg.loss.contrastive_weight = 0.0  # the only difference from the CAE
found = [p for p in (pretrained_path(train.name, "ae"), RUNS / f"{train.name}_ae" / "model.pt") if p.exists()]
if found and not FAST:
    ae_model, _, _ = load_checkpoint(found[0], expected_dataset=train.name)
    ae_where = f"loaded {found[0]}"
else:  # a quick one: AE_EPOCHS epochs on AE_MAX_TRAIN images
    ae_cfg.train.epochs = AE_EPOCHS
    ae_model, _, ae_where = quick_train(ae_cfg, train.sample(AE_MAX_TRAIN, SEED), progress=not FAST)
print("plain AE:", ae_where)

# %% [markdown]
# ## 2. Codes of the test images
#
# We embed the **test** split with each model (in eval mode and without gradients: BatchNorm in
# training mode would make each code depend on its batch neighbours). For the CAE we also take the
# projection `h = g(z)`, the space where the contrastive loss is computed.

# %%
codes = {
    "CAE: code z": embed(model, test),
    "CAE: projection h = g(z)": embed(model, test, space="projection"),
    "plain AE: code z": embed(ae_model, test),
}
for name, z in codes.items():
    print(f"{name:26s} {z.shape}")

# %% [markdown]
# ## 3. PCA maps
#
# PCA finds the two directions along which the codes vary most and projects onto them. It is
# linear and fast, and distances on the map are faithful to distances in the latent space, but two
# directions may capture only a small part of the variance.

# %%
cache = {}  # projections and clusterings are computed once and reused by the next cells
widgets.render_latent_map(codes, test.labels, "pca", "label", class_names=names, preprocess="standardize", seed=SEED,
                          max_points=MAX_POINTS, cache=cache);

# %% [markdown]
# Now the same maps coloured by **k-means cluster** (k = number of classes, fitted on the
# standardised codes, without labels). The title gives the Hungarian-matched accuracy of the clusters against the true
# labels, and the floor. Where cluster colours and label colours agree, the unsupervised structure
# *is* the diagnosis.

# %%
widgets.render_latent_map(codes, test.labels, "pca", "cluster", class_names=names, preprocess="standardize", seed=SEED,
                          max_points=MAX_POINTS, cache=cache);

# %% [markdown]
# ## 4. t-SNE maps
#
# t-SNE (van der Maaten & Hinton, 2008) places points so that **neighbours stay neighbours**. It
# shows local structure much better than PCA, at a price: the size of a cluster and the distance
# between clusters on a t-SNE map mean nothing, and the picture changes with the seed and the
# perplexity. Use it to see *whether* groups exist, not *how far apart* they are. It runs on at most
# `MAX_POINTS` test codes (a few seconds each).

# %%
widgets.render_latent_map(codes, test.labels, "tsne", "label", class_names=names, preprocess="standardize", seed=SEED,
                          max_points=MAX_POINTS, cache=cache);

# %% [markdown]
# ## 5. Two numbers behind the pictures
#
# Maps are suggestive, and easy to over-read. Two numbers make the comparison concrete:
#
# * **k-means Hungarian accuracy** (k = number of classes, on the test codes): can the classes be
#   found *without* labels? For a like-for-like look at the three codes, k-means is fitted here on
#   the standardised test codes themselves, as in the maps above. That is not the evaluation
#   protocol (notebook 4: spectral clustering fitted on the train codes, `h` unscaled), so the
#   projection's number here differs from the 0.840 that notebook 4 and the model card give for the
#   shipped checkpoint (k-means on the same train-fitted codes: 0.817);
# * **kNN accuracy** (k = 10, cosine; train codes as the reference set): are an image's nearest
#   neighbours of its own class? This uses labels, but only to *read out* the code.

# %%
train_codes = {"CAE: code z": embed(model, fit), "CAE: projection h = g(z)": embed(model, fit, space="projection"),
               "plain AE: code z": embed(ae_model, fit)}
rows = []
for name, z in codes.items():
    clusters = cluster_latents(z, test.n_classes, preprocess="standardize", seed=SEED)
    rows.append({"codes": name, "k-means Hungarian acc": hungarian_accuracy(test.labels, clusters),
                 "kNN acc (k = 10)": knn_accuracy(train_codes[name], fit.labels, z, test.labels, k=10),
                 "majority-class floor": majority_class_floor(test.labels)})
markdown_table(rows)

# %% [markdown]
# ## 6. Explore
#
# Choose the projection, the colouring and the model. t-SNE takes a few seconds the first time for
# each model; after that it is cached.

# %%
widgets.latent_map_explorer(codes, test.labels, class_names=names, preprocess="standardize", seed=SEED, max_points=MAX_POINTS)

# %% [markdown]
# *Questions to discuss:*
#
# 1. Which map separates the classes best: `z` or `h`? The protocol clusters `h` (notebook 4 says
#    why), although SimCLR recommends `z` for downstream tasks. With the shipped checkpoint, k-means
#    on `z` happens to score higher on the test split in the table above, and notebook 4 shows the
#    validation split agreeing for this one checkpoint. Does that make the protocol's choice wrong?
#    (How many runs was it made on, and how much does one run's validation split vary?)
# 2. Find the regions where the classes overlap. Are these images ambiguous to you too? (Notebook 4
#    shows the typical images of each cluster.)
# 3. How would you convince a sceptic that a structure on a t-SNE map is real and not an artefact?
#
# **Next:** notebook 4 clusters these codes properly and measures the result.
