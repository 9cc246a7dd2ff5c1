# %% [markdown]
# # 4. Clustering the latent space
#
# *cae-lib course, notebook 4 of 6.* The claim of the paper is that clustering the CAE's codes
# recovers the expert labels **without using them**. Here we test that claim the way a reviewer
# would: fixed protocol, honest metrics, and the majority-class floor next to every accuracy.
#
# **In this notebook you will learn**
#
# * the evaluation protocol: cluster fitted on the train codes, features fixed in advance (and
#   why a per-run choice on the validation split is less steady than it looks), numbers reported
#   on the test split;
# * the metrics: **Hungarian accuracy** (one cluster per label, the one to trust), NMI, ARI, and the
#   paper's **majority-vote accuracy**, which rises with the number of clusters K;
# * centroids against neighbours: k-means, a Gaussian mixture and Ward clustering against spectral
#   clustering on the k-nearest-neighbour graph and SCAN, on the same codes, and why neighbours can
#   win; with a slider for k;
# * how to choose k (elbow and silhouette), and why you should not choose it by majority-vote accuracy;
# * **over-clustering** for subgroup discovery: more clusters than classes, and a look at each
#   subgroup's typical images (the idea behind patient stratification).
#
# **Runtime:** under a minute on one CPU core with the shipped checkpoint. If no shipped or saved model matches your settings, training adds about 40 seconds (PneumoniaMNIST, one core). Measured runtimes and peak memory of every notebook (one CPU core, default parameters) are in [`runtimes.json`](runtimes.json).
#
# **What you should see:** on PneumoniaMNIST, a Hungarian accuracy clearly above the floor of
# 0.625 but far from perfect; a majority-vote accuracy that stays high (or climbs) as k grows while
# the Hungarian accuracy collapses; subgroups that are mostly pure, with visibly different typical images.
# On other data the numbers differ: on BreastMNIST (546 training images) k-means on any unsupervised
# method's codes stays *below* the floor of 0.731, a lesson in what the floor is for, while spectral
# clustering of the CAE's codes rises above it (0.821 over three seeds; notebook 5's committed table).

# %% tags=["parameters"]
# Parameters. Change a value and rerun the notebook (papermill and the tests override this cell).
DATASET = "pneumoniamnist"  # any 2D MedMNIST name ("breastmnist", "bloodmnist", ...), "digits", or a path to your data
DATA_DIR = None             # folder with the MedMNIST .npz files; None: $CAE_DATA_DIR, then ~/.cache/cae_lib/medmnist
SEED = 0
FAST = False                # True: tiny settings so the notebook runs in seconds (automated tests); numbers mean nothing
EPOCHS = None               # None: the library default (enough epochs for 160 optimisation steps; 9 on PneumoniaMNIST)
LATENT_DIM = 32             # the shipped checkpoint was trained with these defaults:
TEMPERATURE = 0.2           # change one and the notebook trains a new model (about 40 s on one CPU core)
K_MAX = 10                  # largest k for the elbow and silhouette curves
K_PITFALL_MAX = 20          # largest k for the majority-vote pitfall
K_OVER = None               # clusters for subgroup discovery; None: 4 x the number of classes (at most 20)
N_TYPICAL = 8               # typical images shown per cluster
MAX_FIT = 5000              # train codes used to fit the clustering methods of section 3 (agglomerative needs N^2 memory)

# %%
# FAST mode (the automated tests) only checks that every cell runs: the library shrinks the data and
# the training (cae_lib.course.FAST_SIZES); here fewer values of k and fewer images.
if FAST:
    K_MAX, K_PITFALL_MAX, K_OVER, N_TYPICAL, MAX_FIT = 4, 5, 4, 4, 500

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from cae_lib import plots, widgets
from cae_lib.cluster import METHODS, choose_k_curves, majority_vote_curve, subgroup_report
from cae_lib.course import cae_config, load_course_data, load_or_train_cae, runs_dir, subgroup_table
from cae_lib.evaluate import EvalConfig, evaluate_model, format_metrics

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
# ## 1. The protocol, and the numbers
#
# `evaluate_model` follows the protocol of this course:
#
# 1. embed the train, val and test splits (eval mode, no gradients);
# 2. cluster with **k = number of classes**, fitted on the **train** features. The clusterer is
#    spectral clustering on the graph that joins each code to its 15 nearest codes
#    (`EvalConfig.method`; section 3 explains it and compares it with k-means), chosen on the
#    validation splits of 12 training runs by rules written before they ran
#    (`benchmarks/results/sweep_clusterers.md`, and `sweep_neighbours.md` for the 15). Which features is also fixed
#    in advance: the projection `h` as the network outputs it (`EvalConfig.cluster_features`). The
#    other candidates (the code `z` or `h`, raw, L2-normalised or standardised) are scored on the
#    **validation** split and printed below, so you can see how much the choice matters;
# 3. why fixed? Picking the best candidate on the validation split for every run sounds careful,
#    but a few hundred validation images make that pick noisy, and it changed with the seed. The
#    fixed choice was made once, on the validation splits of 174 training runs
#    (`benchmarks/results/sweep_defaults.md`); the test labels play no part in any choice;
# 4. report on the **test** split: Hungarian accuracy, NMI, ARI, the paper's majority-vote accuracy
#    at its K = 7 (labelled as such), the kNN and linear-probe accuracies, and the floor.

# %%
assign = {}
result = evaluate_model(model, splits={"train": fit, "val": val, "test": test}, config=EvalConfig(), seed=SEED, assignments=assign)
result["dataset"] = train.name
display(Markdown(format_metrics(result)))

# %%
space, pre = result["cluster_features"].split("/")
pre = None if pre == "none" else pre
print(f"clustered features: {result['cluster_features']} (val Hungarian acc {result['val_hungarian_acc']:.3f}); every candidate on val:")
for name, acc in result["val_hungarian_by_features"].items():
    print(f"  {name:24s} val Hungarian acc {acc:.3f}")
features = assign["features"]  # the chosen features of each split, e.g. features["test"]: (N, D)
f_fit = features["train"][np.sort(np.random.default_rng(SEED).permutation(len(features["train"]))[:MAX_FIT])]  # codes to fit on

# %% [markdown]
# **How to read the metrics.**
#
# * **Hungarian accuracy** matches clusters to labels *one-to-one* (the Hungarian algorithm on the
#   table of counts) and counts how many images land in their label's cluster. Extra clusters count
#   as wrong, so it cannot be inflated by choosing a large k. This is the number to trust.
# * **NMI** (normalised mutual information, 0 to 1) and **ARI** (adjusted Rand index, 0 for random
#   labels, 1 for perfect) compare the two partitions without any matching.
# * **Majority-vote accuracy** maps every cluster to its most frequent label, so several clusters
#   may share a label. It is what the paper reports, at K = 7; it rises with K (section 5 shows
#   how), so it is only meaningful with its K beside it.
# * The **floor**: on the test split, always answering the biggest class scores this much.
#
# ## 2. Where do the clusters go wrong?
#
# The confusion matrix counts test images by true label (rows) and cluster (columns, ordered by
# the one-to-one matching, so a perfect clustering is diagonal).

# %%
plots.confusion_matrix_plot(test.labels, assign["test_clusters"], class_names=names);

# %% [markdown]
# And what does each cluster *look like*? For each of the protocol's clusters (the same ones as in
# the confusion matrix), the test images nearest to its centre, with its size, its majority label
# and its purity.

# %%
report = subgroup_report(features["test"], test.labels, k=test.n_classes, images=test.images, n_typical=N_TYPICAL, preprocess=pre, seed=SEED,
                         clusters=assign["test_clusters"])
plots.subgroup_montages(test.images, report, class_names=names);

# %% [markdown]
# ## 3. Centroids or neighbours? Five clustering methods on the same codes
#
# Three methods think in **centroids** or compact groups: k-means assumes round clusters of similar
# size; a **Gaussian mixture** allows elongated, tilted clusters of different sizes; **agglomerative**
# (Ward) clustering merges the closest groups bottom-up. Two think in **neighbours**:
#
# * **spectral clustering** builds the graph that joins each code to its 15 nearest codes and cuts it
#   where few edges cross; a new code joins the cluster of most of its nearest training codes;
# * **SCAN** (Van Gansbeke et al., 2020) trains a small network that gives each code the same cluster
#   as its neighbours, with an entropy term against putting everything into one cluster.
#
# Each is fitted on (at most `MAX_FIT`) train codes and applied to the test codes, with k = number
# of classes.

# %%
rows = {}
for method in METHODS:
    fig, rows[method] = widgets.render_clustering(features["test"], test.labels, test.n_classes, method, pre, z_fit=f_fit,
                                                  images=test, class_names=names, seed=SEED)
    plt.close(fig)
display(Markdown(widgets.clustering_table(rows)))

# %% [markdown]
# **Why can neighbours win?** The contrastive loss spreads the codes evenly over the sphere, so a
# class is a *connected region* of the code space rather than a round blob around a centre. The
# left panel below draws every test code (a 2-D PCA view of the codes) with an edge to each of its
# nearest codes, found in the full code space; most edges join two images of the same label (grey),
# few cross (red). That is what the kNN probe of section 1 measures, and what spectral clustering
# uses: it cuts the graph where few edges cross. k-means instead cuts the cloud into two halves
# around two centres, wherever the cloud is widest, and the label boundary need not lie there.
# SCAN uses the neighbours too, but its entropy term pushes towards clusters of equal size, and the
# classes here are not: on PneumoniaMNIST it splits the larger class.
#
# On the validation splits of 12 training runs (two data sets, two training lengths, three seeds),
# spectral clustering scored 0.821 on average against k-means's 0.761, and it was never below
# k-means in any data set or recipe; SCAN scored 0.686. A second rule, also fixed in advance, then
# chose the graph's 15 neighbours over 10 (validation 0.836). The test numbers of every method are in
# `benchmarks/results/sweep_clusterers_test.md` and `sweep_neighbours_test.md`; on the bundled
# digits, which no choice saw, spectral clustering is below k-means (0.768 against 0.802): a
# neighbour graph is not always the better model of a data set.

# %%
widgets.neighbours_figure(features["test"], test.labels, f_fit, methods=("kmeans", "spectral", "scan"), preprocess=pre,
                          class_names=names, seed=SEED);

# %% [markdown]
# ## 4. Choosing k without labels
#
# With real unlabelled data you do not know the number of classes. Two classic aids:
#
# * the **elbow**: the within-cluster sum of squares always falls as k grows; look for the k where it
#   stops falling fast;
# * the **silhouette** (-1 to 1): how much closer each point is to its own cluster than to the next
#   one; higher is better.
#
# The paper chose K = 7 by the elbow. Where would you put it here?

# %%
curves = choose_k_curves(features["test"], range(2, K_MAX + 1), preprocess=pre, seed=SEED)
plots.elbow_silhouette(curves);

# %% [markdown]
# ## 5. The majority-vote pitfall, live
#
# Majority-vote accuracy maps each cluster to its most frequent label, so splitting a cluster can
# never cost it anything, and giving every image its own cluster scores exactly 1.0. As k grows it
# therefore climbs, whether or not the extra clusters mean anything; on a well-organised latent
# space it plateaus early (near the kNN accuracy), on a poor one the climb is steep. Hungarian
# accuracy does the opposite: above k = number of classes, the extra clusters count as wrong, so it
# collapses. The curve fits k-means afresh on the test codes at every k: independent fits, not one
# cluster split further, so majority vote can dip by a few points between neighbouring k, and its k = 2
# and K = 7 values differ a little from section 1's (fitted on the train codes). Read the trend.

# %%
curve = majority_vote_curve(features["test"], test.labels, range(2, K_PITFALL_MAX + 1), preprocess=pre, seed=SEED)
plots.majority_vote_pitfall(curve);

# %%
k_at = dict(zip(curve["k"], curve["majority_vote_acc"]))
print(f"majority-vote accuracy at k = {curve['k'][0]}: {curve['majority_vote_acc'][0]:.3f}; at k = {curve['k'][-1]}: {curve['majority_vote_acc'][-1]:.3f}"
      + (f"; at the paper's K = 7: {k_at[7]:.3f}" if 7 in k_at else ""))
best_k = max(k_at, key=k_at.get)
print(f"the highest majority-vote accuracy, {k_at[best_k]:.3f}, comes at k = {best_k}: choosing k by it would pick this many clusters")
print(f"Hungarian accuracy at k = number of classes ({test.n_classes}): {result['hungarian_acc']:.3f}; floor {result['majority_floor']:.3f}")

# %% [markdown]
# So when you read "accuracy 0.9" for a clustering, ask: *which* accuracy, at *which* K, and what is
# the floor? Compare methods only at the same K, and prefer Hungarian accuracy.
#
# ## 6. Explore: k and the method
#
# Move the slider, choose a method and press **Run**. The clustering is fitted on the train codes and
# scored on the test codes; below the figure is the metrics row with the floor.

# %%
widgets.cluster_explorer(features["test"], test.labels, images=test, class_names=names, z_fit=f_fit, preprocess=pre, k_max=K_PITFALL_MAX, seed=SEED)

# %% [markdown]
# ## 7. Over-clustering: subgroups within the classes
#
# Expert labels are coarse. In PneumoniaMNIST, "pneumonia" can be bacterial or viral, lobar or
# patchy, and X-rays differ in age, positioning and exposure; BreastMNIST's "normal or benign" joins
# two findings in one class, and every data set has its own such mixtures. With **more clusters than classes**, each
# class splits into subgroups, and the typical images of each subgroup let a clinician ask: *is
# this a meaningful stratum of patients, or an acquisition artefact?* This is the idea behind
# unsupervised **patient stratification**.
#
# A caveat worth repeating: a cluster is a **hypothesis**, not a finding. It needs checking against
# clinical metadata or expert review before it means anything medically.

# %%
k_over = K_OVER or min(4 * test.n_classes, 20)
subgroups = subgroup_report(features["test"], test.labels, k=k_over, images=test.images, n_typical=N_TYPICAL, preprocess=pre, seed=SEED)
plots.subgroup_montages(test.images, subgroups, class_names=names);

# %%
subgroup_table(subgroups, names)

# %% [markdown]
# *Questions to discuss:*
#
# 1. Which subgroups are pure, and which mix the classes? Do the mixed ones look ambiguous to you?
# 2. Do some subgroups differ in something that has nothing to do with disease (brightness,
#    rotation, a label burnt into the image)? What would that mean for a model trained on these data?
# 3. The majority-vote accuracy of this over-clustering is high. Why is that *not* evidence that the
#    subgroups are medically meaningful?
#
# **Next:** notebook 5 puts these numbers beside supervised baselines.
