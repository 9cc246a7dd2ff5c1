"""Figure functions for the notebooks and the report.

Conventions (the same for every function):

- each returns a ``matplotlib.figure.Figure`` and never calls ``plt.show()``;
- each accepts ``ax=`` (or ``axes=`` where it needs several panels) to draw into your own
  figure; without it a new figure is created;
- images may be uint8 ``(N, H, W)`` / ``(N, H, W, C)`` or float ``(N, C, H, W)`` in [0, 1]
  (NumPy or torch), with 1 or 3 channels.

Close figures you no longer need (``plt.close(fig)``) in loops, or memory grows.

Modules: ``images`` (grids, class and cluster montages, reconstructions), ``latent`` (2-D maps of
the codes), ``clustering`` (confusion matrix, choosing k, the majority-vote pitfall), ``training``
(loss and accuracy curves), ``results`` (class balance, results bars, label efficiency), ``axes``
(the shared ``ax=`` helper). Every figure function is importable from ``cae_lib.plots`` itself.
"""

from cae_lib.plots.clustering import confusion_matrix_plot, elbow_silhouette, majority_vote_pitfall, neighbours_and_centroids
from cae_lib.plots.images import (
    class_montage,
    cluster_montages,
    image_grid,
    reconstructions,
    subgroup_montages,
    to_display,
)
from cae_lib.plots.latent import latent_map, project_2d
from cae_lib.plots.results import class_balance, label_efficiency, results_bar_chart
from cae_lib.plots.training import ACCURACY_KEYS, NOT_PLOTTED, History, training_curves

__all__ = [
    "ACCURACY_KEYS",
    "NOT_PLOTTED",
    "History",
    "class_balance",
    "class_montage",
    "cluster_montages",
    "confusion_matrix_plot",
    "elbow_silhouette",
    "image_grid",
    "label_efficiency",
    "latent_map",
    "majority_vote_pitfall",
    "neighbours_and_centroids",
    "project_2d",
    "reconstructions",
    "results_bar_chart",
    "subgroup_montages",
    "to_display",
    "training_curves",
]
