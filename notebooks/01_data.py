# %% [markdown]
# # 1. The data: MedMNIST, class balance and contrastive views
#
# *cae-lib course, notebook 1 of 6.* Before we train anything, we look at the data. Every later
# notebook rests on what we establish here: how many images there are, how the classes are
# balanced (which tells us what accuracy means *nothing*), and what the two "views" of contrastive
# learning look like.
#
# **In this notebook you will learn**
#
# * what MedMNIST is, where PneumoniaMNIST comes from, and how `cae_lib` loads it (also offline);
# * how imbalanced the classes are, and why the **majority-class floor** must stand beside every accuracy;
# * the pixel statistics of the images, per class;
# * what the two random *views* of a SimCLR-style model look like, with a slider for the augmentation strength;
# * how to bring your own images: a folder with one sub-folder per class, or an `.npz` file.
#
# **Runtime:** about 6 seconds on one CPU core (nothing is trained). Measured runtimes and peak memory of every notebook (one CPU core, default parameters) are in [`runtimes.json`](runtimes.json).
#
# **What you should see:** grey 28 x 28 chest X-rays; about three pneumonia images for every normal
# one in the training split (floor 0.742) but a less skewed test split (floor 0.625); views that
# are shifted, zoomed, rotated and re-exposed, but at the default strength most stay recognisably
# the same X-ray.

# %% tags=["parameters"]
# Parameters. Change a value and rerun the notebook (papermill and the tests override this cell).
DATASET = "pneumoniamnist"  # any 2D MedMNIST name ("breastmnist", "bloodmnist", ...), "digits", or a path to your data
DATA_DIR = None             # folder with the MedMNIST .npz files; None: $CAE_DATA_DIR, then ~/.cache/cae_lib/medmnist
SEED = 0
FAST = False                # True: tiny settings so the notebook runs in seconds (automated tests); numbers mean nothing
AUG_STRENGTH = 1.5          # strength of the contrastive augmentation (the library default, chosen on the val split)
N_VIEWS = 5                 # random views shown per image

# %%
# FAST mode (the automated tests) only checks that every cell runs: the library loads fewer images
# (cae_lib.course.FAST_SIZES), and this notebook shows fewer views.
if FAST:
    N_VIEWS = 2

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from cae_lib import plots, widgets
from cae_lib.config import AugmentConfig
from cae_lib.course import balance_table, load_course_data
from cae_lib.data import class_balance, format_dataset_table, list_datasets, load_dataset, save_npz, summarize

plt.rcParams["figure.dpi"] = 80  # small figures keep the saved notebook light

# %% [markdown]
# ## 1. What is MedMNIST?
#
# **MedMNIST v2** (Yang et al., *MedMNIST v2: A large-scale lightweight benchmark for 2D and 3D
# biomedical image classification*, Scientific Data 10, 41, 2023) collects 12 two-dimensional and
# 6 three-dimensional biomedical datasets, all pre-processed into the format of MNIST: small square
# images (28 x 28 here; 64, 128 and 224 px in the larger "MedMNIST+" files), one label per image,
# and fixed official **train / val / test splits**. The point is a benchmark that runs on a laptop,
# so that methods can be compared on equal footing. The data are released under CC BY 4.0 (check
# the licence of each source dataset before you use it elsewhere).
#
# **PneumoniaMNIST**, our default, comes from the paediatric chest X-rays of Kermany et al.
# (*Cell* 172, 2018): 5,856 images of children, labelled *normal* or *pneumonia*. MedMNIST
# centre-cropped each image to a square and resized it to 28 x 28; its official split has 4,708
# training, 524 validation and 624 test images. **BreastMNIST** (780 breast ultrasound images,
# *malignant* vs *normal or benign*) is the second dataset on our course machines.
#
# `cae_lib` resolves the data folder in a fixed order: the `data_dir` argument, then the
# environment variable `CAE_DATA_DIR`, then `~/.cache/cae_lib/medmnist`. A missing file is
# downloaded with a timeout and an MD5 check; if that is impossible (offline, server down), the
# error message tells you the URL, the checksum and the folder to put the file in. The bundled
# dataset `digits` (scikit-learn's hand-written digits, resized to 28 x 28) always works offline.
#
# Which datasets does this machine have?

# %%
print(format_dataset_table(list_datasets(DATA_DIR)))

# %% [markdown]
# Let's load the three official splits. Images stay `uint8` in memory (a float copy of a large
# MedMNIST set would not fit in a Binder session); only a batch is converted to floats in [0, 1]
# when a model needs it (`ImageData.to_tensor`).

# %%
train, val, test, _ = load_course_data(DATASET, DATA_DIR, SEED, fast=FAST)  # the official splits, images kept as uint8
names = list(train.class_names)
print(train, val, test, sep="\n")

# %% [markdown]
# A handful of random training images per class. Try to say in words what distinguishes the
# classes: that is roughly what an unsupervised model has to discover on its own, without ever
# seeing a label.

# %%
shown = train.sample(2000, SEED)  # a subset is plenty for a montage (and light on memory for big datasets)
plots.class_montage(shown.images, shown.labels, names, per_class=10, seed=SEED);

# %% [markdown]
# ## 2. Class balance and the majority-class floor
#
# Suppose a model always answers "pneumonia". On the PneumoniaMNIST test split it would be right
# 390 times out of 624: **62.5 % accuracy without looking at a single image**. This number, the
# accuracy of always predicting the largest class, is the *majority-class floor*. Every accuracy in
# this course is printed next to it: a clustering accuracy of 0.70 on this test split is only 7.5
# points above doing nothing.
#
# `class_balance` counts the labels of the splits we loaded above.

# %%
balance = class_balance({"train": train, "val": val, "test": test})
plots.class_balance({split: b["counts"] for split, b in balance.items()}, class_names=names);

# %%
balance_table(balance, names)

# %% [markdown]
# Notice that the floor is **not the same in every split**: PneumoniaMNIST's training and
# validation splits are about 74 % pneumonia, its test split only 62.5 %. A classifier that learned
# the training prior by heart would look better on validation than on test. Always compare an
# accuracy with the floor *of the split it was measured on*.

# %% [markdown]
# ## 3. Pixel statistics
#
# The CAE sees pixels in [0, 1] and reconstructs them through a sigmoid, so no per-dataset
# normalisation is needed; still, it is worth knowing how bright and how varied the images are.
# Differences in overall brightness between the classes are exactly the kind of shortcut that a
# clustering on raw pixels will exploit (notebook 5 measures how far that gets you).

# %%
stats = summarize(train)
for c, (m, s) in enumerate(zip(stats["pixel_mean"], stats["pixel_std"])):
    print(f"channel {c}: mean {m:.3f}, std {s:.3f} (on the [0, 1] scale)")

# %%
# The average image of each class, and the distribution of pixel values per class
# (at most 1,000 images per class, so this stays fast on the large MedMNIST sets).
rng = np.random.default_rng(SEED)
members = [rng.permutation(np.flatnonzero(train.labels == c))[:1000] for c in range(train.n_classes)]
mean_images = np.stack([train.images[m].mean(axis=0) / 255 for m in members])
plots.image_grid(mean_images, nrow=min(len(names), 10), titles=[n[:12] for n in names]).suptitle("mean image per class")

fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
for c, m in enumerate(members):
    ax.hist(train.images[m].ravel(), bins=64, range=(0, 255), density=True, histtype="step", label=names[c][:20])
ax.set(xlabel="pixel value (0-255)", ylabel="density", title="pixel values per class")
ax.legend(fontsize=8);

# %% [markdown]
# ## 4. Contrastive views
#
# The contrastive part of the CAE follows SimCLR (Chen et al., ICML 2020): every image in a batch
# is augmented twice, and the network must recognise which of the other 2N - 1 views in the batch
# is the *partner* of each view. **Whatever the two views share is what the latent space keeps;
# whatever differs between them it learns to ignore.** So the augmentation decides what
# "similar" means.
#
# For medical images the views must stay plausible: a mild zoom, shift and rotation (patient
# positioning), brightness and contrast jitter (exposure), a brightness ramp across the image
# (`gradient`: uneven exposure; without it k-means split PneumoniaMNIST by how much brighter its top
# half is, on about one seed in three), a little blur and noise (scanner quality). Flips are off by
# default, because a chest X-ray is not left-right symmetric (the heart sits on the left); switch
# them on (`AugmentConfig(hflip=True)`) for cells or skin lesions. One number, `strength`, scales
# every magnitude at once:

# %%
print(AugmentConfig())

# %%
widgets.render_views(train, strength=AUG_STRENGTH, seed=SEED, n_views=N_VIEWS);

# %% [markdown]
# Now explore it yourself. Move the slider (the views are recomputed when you let go): at strength
# 0 the views are identical and the task is trivial; somewhere above 2 they stop looking like the
# same X-ray. The default, 1.5, was chosen on the *validation* split (never on test), by the
# clustering accuracy it gave.
#
# *Question:* what would the network learn if the views differed only in brightness? (Hint: it
# could then match views by their exact shape, edges and texture, which identifies an image
# without saying anything about its diagnosis.)

# %%
widgets.augmentation_explorer(train, n_views=N_VIEWS)

# %% [markdown]
# For readers of the static page: the same image at three strengths.

# %%
for strength in (0.5, AUG_STRENGTH, 3.0):
    widgets.render_views(train, strength=strength, seed=SEED, n_images=2, n_views=N_VIEWS)

# %% [markdown]
# ## 5. Bring your own data
#
# Everything in this course works on your own images too. `load_dataset(path)` accepts
#
# * a **folder with one sub-folder per class** (`my_data/benign/*.png`, `my_data/malignant/*.png`, ...);
#   images are centre-cropped, resized to 28 x 28, kept grey if every image is grey, and split
#   70 / 10 / 20 into train / val / test, stratified by class with a fixed seed;
# * an **`.npz` file in MedMNIST layout** (`train_images`, `train_labels`, `val_...`, `test_...`),
#   which is also what `save_npz` writes (e.g. images generated in notebook 6).
#
# Let's try both with a few test images written to a temporary folder (nothing is written into
# the repository). With only 12 images per class, the rounding of 70 / 10 / 20 shows: the split
# printed below is not exactly those fractions.

# %%
tmp = Path(tempfile.mkdtemp())
picked = np.concatenate([np.flatnonzero(test.labels == c)[:12] for c in range(test.n_classes)])
for i in picked:  # one PNG file per image, in a sub-folder named after its class
    folder = tmp / "my_images" / names[test.labels[i]].replace("/", "-")
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(test.images[i]).save(folder / f"img{i:04d}.png")
mine = load_dataset(tmp / "my_images", split="train")
print(mine)
print("classes:", mine.class_names)

# %%
path = save_npz(tmp / "my_data.npz", {"train": mine, "test": load_dataset(tmp / "my_images", split="test")}, class_names=mine.class_names)
print(load_dataset(path, split="test"))

# %% [markdown]
# To run the whole course on your data, set `DATASET = "/path/to/my_images"` (or the `.npz` path)
# in the parameters cell of each notebook. Any other 2D MedMNIST set works by name, e.g.
# `DATASET = "bloodmnist"` (RGB images, 8 classes): the models adapt to the number of channels.
#
# **Next:** notebook 2 trains the contrastive autoencoder on these images.
