"""Interactive explorers (ipywidgets) for the notebooks, and the plain functions behind them.

Every explorer has two layers:

* a **render function**: plain inputs -> a ``matplotlib.figure.Figure`` (and, for clustering, a
  dict of metrics). It knows nothing about widgets, so it runs in a test, a script or a static
  notebook cell exactly as it runs behind a slider;
* a **builder**: puts the render function behind sliders and dropdowns and returns an
  :class:`Explorer` (an ``ipywidgets.VBox``) that re-renders when a control changes.

=================================  ===================================  ==================================
builder                            render function                      what you explore
=================================  ===================================  ==================================
:func:`augmentation_explorer`      :func:`render_views`                 contrastive views vs strength
:func:`latent_map_explorer`        :func:`render_latent_map`            PCA / t-SNE maps, label or cluster
:func:`cluster_explorer`           :func:`render_clustering`            k, method -> metrics, confusion
:func:`traversal_explorer`         :func:`render_traversal`             walking along latent directions
:func:`interpolation_explorer`     :func:`render_interpolation`         morphing one image into another
:func:`class_sampling_explorer`    :func:`render_class_samples`         new images of a chosen class
=================================  ===================================  ==================================

Heavy callbacks (clustering, which refits a model) run only when you press **Run**; sliders use
``continuous_update=False`` so decoding happens once, when you let go of the slider. Figures are
closed after they are displayed, so moving a slider a hundred times does not grow memory.

Modules: ``common`` (the :class:`Explorer` shell and its controls), ``views`` (1), ``latent_maps``
(2), ``clustering`` (3, and :func:`neighbours_figure`), ``decoding`` (4-6 and :func:`render_samplers`). Everything is importable
from ``cae_lib.widgets`` itself.
"""

from cae_lib.widgets.clustering import cluster_explorer, clustering_table, neighbours_figure, render_clustering
from cae_lib.widgets.common import EXPLORER_TEXT, Explorer
from cae_lib.widgets.decoding import (
    class_sampling_explorer,
    interpolation_explorer,
    render_class_samples,
    render_interpolation,
    render_samplers,
    render_traversal,
    traversal_explorer,
)
from cae_lib.widgets.latent_maps import latent_map_explorer, render_latent_map
from cae_lib.widgets.views import augmentation_explorer, render_views

__all__ = [
    "EXPLORER_TEXT",
    "Explorer",
    "augmentation_explorer",
    "class_sampling_explorer",
    "cluster_explorer",
    "clustering_table",
    "interpolation_explorer",
    "latent_map_explorer",
    "neighbours_figure",
    "render_class_samples",
    "render_clustering",
    "render_interpolation",
    "render_latent_map",
    "render_samplers",
    "render_traversal",
    "render_views",
    "traversal_explorer",
]
