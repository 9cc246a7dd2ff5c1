# %% [markdown]
# # 6. New images from the latent space
#
# *cae-lib course, notebook 6 of 6.* Ferrante et al. propose the CAE also "for data augmentation in
# medical image processing, due to its sampling abilities". If the latent space is well organised,
# we can **draw new codes** and decode them into new, *labelled* images. Here we try that, look at
# the results with a critical eye, and read what the committed augmentation benchmark concluded.
#
# **In this notebook you will learn**
#
# * three samplers: the VAE prior N(0, I), one Gaussian fitted to all codes, and one Gaussian per
#   class (`ClassGMMSampler`, which gives every sample a label and a confidence);
# * quality checks: are the samples **new** (not copies of training images), **diverse**, and do
#   they carry the **label** we asked for?
# * interactive decoding: traversals along the principal directions, interpolation between two
#   images, and per-class sampling with a temperature;
# * whether generated images actually help a classifier trained with few labels.
#
# **Runtime:** under a minute on one CPU core with the shipped checkpoint. If no shipped or saved model matches your settings, training adds about 40 seconds (PneumoniaMNIST, one core). Measured runtimes and peak memory of every notebook (one CPU core, default parameters) are in [`runtimes.json`](runtimes.json).
#
# **What you should see:** prior samples that do not look like X-rays (the CAE is not a VAE); blurry
# but plausible class samples; traversals that change global appearance (brightness, size of the
# lung field) more than anything you could call a diagnosis.

# %% tags=["parameters"]
# Parameters. Change a value and rerun the notebook (papermill and the tests override this cell).
DATASET = "pneumoniamnist"  # any 2D MedMNIST name ("breastmnist", "bloodmnist", ...), "digits", or a path to your data
DATA_DIR = None             # folder with the MedMNIST .npz files; None: $CAE_DATA_DIR, then ~/.cache/cae_lib/medmnist
SEED = 0
FAST = False                # True: tiny settings so the notebook runs in seconds (automated tests); numbers mean nothing
EPOCHS = None               # None: the library default (enough epochs for 160 optimisation steps; 9 on PneumoniaMNIST)
LATENT_DIM = 32             # the shipped checkpoint was trained with these defaults:
TEMPERATURE = 0.2           # change one and the notebook trains a new model (about 40 s on one CPU core)
N_SAMPLES = 16              # samples per figure
SCALE = 1.0                 # sampling temperature: multiplies the spread around each class mean
N_CHECK = 200               # samples used for the quality checks

# %%
# FAST mode (the automated tests) only checks that every cell runs: the library shrinks the data and
# the training (cae_lib.course.FAST_SIZES); here fewer samples.
if FAST:
    N_SAMPLES, N_CHECK = 8, 32

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

from cae_lib import widgets
from cae_lib.course import cae_config, committed_results, load_course_data, load_or_train_cae, runs_dir
from cae_lib.embed import embed
from cae_lib.probes import linear_probe
from cae_lib.comparison import BENCHMARK_DIR
from cae_lib.sampling import (ClassGMMSampler, GaussianSampler, LatentTraversal, PriorSampler, diversity,
                              label_agreement, memorisation_check)

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
# ## 1. Three samplers
#
# A sampler only sees codes; the model is needed only to decode (as in pythae, samplers are kept
# apart from models). All three are fitted on the codes of the training images:
#
# * `PriorSampler`: z ~ N(0, I). Right for a VAE, whose KL term pulls the codes towards this prior.
#   Our CAE has no such term, so its codes can sit anywhere: expect a warning, and bad samples.
# * `GaussianSampler`: one Gaussian with the mean and covariance of all training codes (the
#   authors' approach). Samples are labelled afterwards by the nearest class centre.
# * `ClassGMMSampler`: one Gaussian per class. You choose the class; each sample also carries a
#   **confidence**, the posterior probability of its class at that point of the latent space.

# %%
z_fit = embed(model, fit)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    samplers = {
        "prior N(0, I)": PriorSampler().fit(z_fit, fit.labels),
        "one Gaussian": GaussianSampler().fit(z_fit, fit.labels),
        "Gaussian per class": ClassGMMSampler().fit(z_fit, fit.labels),
    }
for w in caught:
    print("warning:", w.message)

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the prior sampler's warning was shown above
    widgets.render_samplers(model, samplers, n=min(N_SAMPLES, 12), seed=SEED, scale=SCALE, class_names=names);

# %% [markdown]
# ## 2. Are the samples any good?
#
# Three checks, each with a reference point so that the number means something:
#
# * **Memorisation:** the pixel distance from each sample to its nearest training image, compared
#   with how close *real* training images come to each other. Copies of training images would be
#   suspiciously close.
# * **Diversity:** the mean pairwise distance between samples, next to the same number for real images.
# * **Label agreement:** a classifier trained on *real* images (here a logistic regression on raw
#   pixels, scored on the test split first) predicts the class of each sample; how often does it
#   agree with the class we asked for?

# %%
samples = samplers["Gaussian per class"].sample(model, N_CHECK, seed=SEED, scale=SCALE)
print(memorisation_check(samples.images, fit.images, seed=SEED).summary())
real = fit.images[np.random.default_rng(SEED).permutation(len(fit))[:N_CHECK]]
print(f"diversity: samples {diversity(samples.images, seed=SEED):.3f}, real training images {diversity(real, seed=SEED):.3f} (mean pairwise RMS distance)")

# %%
pixels = lambda images: np.asarray(images, np.float32).reshape(len(images), -1) / 255  # noqa: E731
some = np.random.default_rng(SEED).permutation(len(fit))[:2000]  # 2,000 real images are enough for this check
clf = linear_probe(pixels(fit.images[some]), fit.labels[some], pixels(test.images), test.labels, seed=SEED)
agree = label_agreement(samples.labels, clf["model"].predict(pixels(samples.images)))
print(f"pixel classifier: test accuracy {clf['accuracy']:.3f} (its ceiling); agrees with the sampled label on {agree:.1%} of {N_CHECK} samples")
print(f"mean sampler confidence {np.mean(samples.confidence):.2f}")

# %% [markdown]
# *How to read this:* a ratio of distances near 1 means the samples are as novel as real images are
# among themselves; far below 1 would mean copying. Lower diversity than real images means the
# sampler covers only part of the data's variety (decoded images are also smoother than real ones,
# which lowers both numbers). A label agreement near the classifier's own test accuracy means the
# class information survives decoding.
#
# ## 3. Per-class sampling, with a temperature
#
# `scale` multiplies the spread around the class mean: 0 decodes the mean code itself (the
# "prototype" of the class), small values give typical but similar samples, large values diverse
# but less plausible ones. The number on each tile is the sample's class confidence.

# %%
for c in samplers["Gaussian per class"].classes_[:4]:  # the first four classes (all of them for binary datasets)
    widgets.render_class_samples(model, samplers["Gaussian per class"], label=int(c), scale=SCALE, seed=SEED, n=8, class_names=names)

# %%
widgets.class_sampling_explorer(model, samplers["Gaussian per class"], class_names=names, n=N_SAMPLES)

# %% [markdown]
# ## 4. Latent traversals
#
# What does each direction of the latent space encode? Start at the mean code and walk along one
# direction, decoding as you go. We use the **principal directions** of the training codes (largest
# variance first): a plain autoencoder has no reason to align meaningful factors with its raw axes,
# so the principal directions are far more readable. Each row is one direction, from -2 to +2
# standard deviations.

# %%
traversal = LatentTraversal().fit(z_fit)
widgets.render_traversal(model, traversal, direction=0, n_directions=min(4, LATENT_DIM), max_sd=2.0, steps=7);

# %% [markdown]
# Pick a direction, a range and a starting image (-1 starts at the mean code). Which directions
# change something you would call clinically relevant, and which only change the acquisition
# (brightness, position, zoom)?

# %%
widgets.traversal_explorer(model, traversal, images=test)

# %% [markdown]
# ## 5. Interpolation
#
# Encode two images, walk the straight line between their codes, decode each step. A well-organised
# latent space morphs one image into the other through plausible images; holes in the space show
# up as implausible in-between images. (`slerp` walks along a great circle instead, which suits
# the VAE prior better.) By default: the first test image of the first class, and the first of
# the second class.

# %%
a, b = (int(np.flatnonzero(test.labels == c)[0]) for c in np.unique(test.labels)[:2])
widgets.render_interpolation(model, test, a, b, steps=8, class_names=names);

# %%
widgets.interpolation_explorer(model, test, class_names=names)

# %% [markdown]
# ## 6. Do generated images help a classifier?
#
# The real test of "data augmentation" is not whether samples look nice but whether they **help**:
# train a classifier on a few real labelled images, with and without generated ones added, and
# compare test accuracies over several seeds. `python -m cae_lib augment-benchmark` runs that
# experiment and writes `benchmarks/results/<dataset>_augment.{md,json}`; its conclusion is shown
# below, as written, whichever way it came out.

# %%
display(*committed_results(BENCHMARK_DIR, train.name, "augment"))  # the table and its conclusion, as the benchmark wrote them

# %% [markdown]
# *Questions to discuss:*
#
# 1. The class confidence of a sample comes from the same latent space it was drawn from. Why is
#    the label agreement of an *independent* classifier the more convincing check?
# 2. Blurry samples may still help a classifier, or they may teach it that "blurry" is a feature.
#    How would you tell the difference?
# 3. Before you used generated images to train a clinical model, what else would you want to know?
#
# This is the end of the course. The library's README lists the command-line tools that run the
# same steps outside notebooks (`python -m cae_lib train / evaluate / benchmark / sample / demo`).
