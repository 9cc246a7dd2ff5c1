"""SCAN on frozen codes: a clustering head trained so that every code agrees with its neighbours.

SCAN (Van Gansbeke et al., "SCAN: Learning to Classify Images without Labels", ECCV 2020,
arXiv 2005.12320) has three steps; the first, a self-supervised representation, is the CAE here.

1. **Mine neighbours**: the ``n_neighbors`` nearest codes of every training code (Euclidean, in
   the space the codes are given in, as for spectral clustering; ``metric="cosine"`` for the
   paper's choice, the same as Euclidean on L2-normalised codes).
2. **Train a clustering head** ``p = softmax(head(x))`` with the SCAN loss (their eq. 2):

   ``L = -1/N sum_i log <p_i, p_j>  -  entropy_weight * H(mean_i p_i)``,  j a random neighbour of i.

   The first term makes a code and its neighbour put their probability on the same cluster; the
   second, the entropy of the average assignment, stops the trivial answer of one big cluster.
   Classes of unequal size (74 % of PneumoniaMNIST's train split is one class) want a smaller
   ``entropy_weight`` than the balanced sets of the paper.
3. **Self-label**: codes whose assignment is confident (max p above ``threshold``) become their
   own targets for a cross-entropy, weighted against large clusters, while the input is perturbed
   (Gaussian noise, standing in for the paper's strong augmentation, since the codes are frozen).

The head is trained ``n_init`` times from different seeds; the run with the lowest SCAN loss on the
training codes (no labels; each code against the mean assignment of its neighbours) is kept, as the
paper keeps the head with the lowest loss.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.neighbors import NearestNeighbors


def scan_loss(p_anchor: torch.Tensor, p_neighbour: torch.Tensor, entropy_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The SCAN loss of a batch of cluster probabilities.

    Args:
        p_anchor: (B, K) probabilities of the anchors (rows sum to 1).
        p_neighbour: (B, K) probabilities of one neighbour of each anchor.
        entropy_weight: weight of the entropy of the mean anchor assignment.

    Returns:
        ``(total, consistency, entropy)``: ``consistency = -mean_i log <p_anchor_i, p_neighbour_i>``,
        ``entropy = H(mean_i p_anchor_i)`` (nats) and ``total = consistency - entropy_weight * entropy``.

    Example: two anchors both at (0.5, 0.5) with neighbours at (0.5, 0.5) give consistency
    ``log 2``, entropy ``log 2`` and, at weight 1, a total of 0.
    """
    agreement = (p_anchor * p_neighbour).sum(dim=1)
    consistency = -torch.log(agreement.clamp_min(1e-8)).mean()
    mean_p = p_anchor.mean(dim=0)
    entropy = -(mean_p * torch.log(mean_p.clamp_min(1e-8))).sum()
    return consistency - entropy_weight * entropy, consistency, entropy


def mine_neighbours(x: np.ndarray, n_neighbors: int, metric: str = "euclidean") -> np.ndarray:
    """The ``n_neighbors`` nearest other rows of each row of ``x: (N, D)`` -> (N, n) indices, nearest first.

    ``metric`` is any of scikit-learn's ``NearestNeighbors`` metrics (``"euclidean"``, ``"cosine"``, ...).
    """
    n = min(int(n_neighbors), len(x) - 1)
    _, idx = NearestNeighbors(n_neighbors=n + 1, metric=metric, algorithm="brute").fit(x).kneighbors(x)
    # each row's first neighbour is itself, unless duplicates tie with it: drop self wherever it is
    out = np.empty((len(x), n), dtype=np.int64)
    for i, row in enumerate(idx):
        others = row[row != i]
        out[i] = others[:n]
    return out


class SCANClustering(ClusterMixin, BaseEstimator):
    """SCAN's clustering head on frozen codes ``x: (N, D)``, with the scikit-learn API.

    Args:
        k: number of clusters.
        n_neighbors: mined neighbours per code (the paper uses 20).
        metric: how neighbours are mined (``"euclidean"`` or ``"cosine"``, see :func:`mine_neighbours`).
        entropy_weight: weight of the entropy term (the paper uses 5 on balanced sets).
        hidden: width of the head's hidden layer (0: a linear head).
        epochs: passes over the codes for the SCAN loss; self_label_epochs: for self-labelling
            (0 skips it).
        threshold: confidence above which a code is its own self-label target (the paper: 0.99).
        noise: standard deviation of the Gaussian noise added to the (standardised) codes while
            self-labelling, as a fraction of one.
        batch_size, lr: Adam's batch size and learning rate.
        n_init: heads trained from different seeds; the one with the lowest SCAN loss is kept.
        seed: seeds the heads and the neighbour sampling.
        n_threads: torch's CPU threads while fitting and predicting (restored afterwards); ``None``
            leaves torch's setting alone. :class:`~cae_lib.cluster.LatentClusterer` passes its own (default 1).

    The codes are standardised (fitted on the ``fit`` codes) before the head sees them.

    Attributes (after ``fit``):
        labels_: (N,) cluster of each training code; centers_: (k, D) the clusters' mean codes;
        neighbours_: (N, n_neighbors) the mined neighbours; head_: the kept head (eval mode);
        loss_: its final SCAN loss on the training codes.
    """

    def __init__(
        self,
        k: int,
        n_neighbors: int = 20,
        entropy_weight: float = 5.0,
        hidden: int = 128,
        epochs: int = 30,
        self_label_epochs: int = 10,
        threshold: float = 0.99,
        noise: float = 0.1,
        batch_size: int = 256,
        lr: float = 1e-3,
        n_init: int = 3,
        seed: int = 0,
        metric: str = "euclidean",
        n_threads: int | None = None,
    ) -> None:
        self.k = k
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.entropy_weight = entropy_weight
        self.hidden = hidden
        self.epochs = epochs
        self.self_label_epochs = self_label_epochs
        self.threshold = threshold
        self.noise = noise
        self.batch_size = batch_size
        self.lr = lr
        self.n_init = n_init
        self.seed = seed
        self.n_threads = n_threads

    @contextmanager
    def _threads(self) -> Iterator[None]:
        """Run the block with ``n_threads`` torch threads, then put torch's setting back."""
        previous = torch.get_num_threads()
        if self.n_threads:
            torch.set_num_threads(int(self.n_threads))
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    # -- fitting ------------------------------------------------------------------------
    def fit(self, x: np.ndarray, y: None = None) -> "SCANClustering":
        """Mine neighbours, train ``n_init`` heads, keep the best; ``y`` is ignored."""
        x = np.asarray(x, dtype=np.float64)
        if int(self.k) < 2:
            raise ValueError(f"SCAN needs k >= 2 clusters, got {self.k}")
        if self.n_init < 1 or self.epochs < 1:
            raise ValueError(f"n_init and epochs must be at least 1, got {self.n_init} and {self.epochs}")
        self.mean_, self.scale_ = x.mean(axis=0), x.std(axis=0) + 1e-8
        inputs = torch.as_tensor((x - self.mean_) / self.scale_, dtype=torch.float32)
        self.neighbours_ = mine_neighbours(x, self.n_neighbors, self.metric)
        neighbours = torch.as_tensor(self.neighbours_)
        best: tuple[float, nn.Module] | None = None
        with self._threads():
            for run in range(int(self.n_init)):
                generator = torch.Generator().manual_seed(int(self.seed) * 1000 + run)
                head = self._train_head(inputs, neighbours, generator)
                with torch.no_grad():
                    p = F.softmax(head(inputs), dim=1)
                    loss = float(scan_loss(p, p[neighbours].mean(dim=1), self.entropy_weight)[0])
                if best is None or loss < best[0]:
                    best = (loss, head)
            assert best is not None
            self.loss_, self.head_ = best
            self.labels_ = self._predict_inputs(inputs)
        self.centers_ = np.stack([x[self.labels_ == c].mean(axis=0) if (self.labels_ == c).any() else np.full(x.shape[1], np.inf)
                                  for c in range(int(self.k))])
        return self

    def _train_head(self, inputs: torch.Tensor, neighbours: torch.Tensor, generator: torch.Generator) -> nn.Module:
        d, k = inputs.shape[1], int(self.k)
        with torch.random.fork_rng(devices=[]):  # seed the head's initial weights without touching the global RNG
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
            head = nn.Sequential(nn.Linear(d, self.hidden), nn.BatchNorm1d(self.hidden), nn.ReLU(), nn.Linear(self.hidden, k)) \
                if self.hidden else nn.Linear(d, k)
        optimizer = torch.optim.Adam(head.parameters(), lr=self.lr, weight_decay=1e-4)
        n, batch = len(inputs), min(int(self.batch_size), len(inputs))
        head.train()
        for _ in range(int(self.epochs)):  # step 2: neighbours agree, no single big cluster
            for rows in torch.randperm(n, generator=generator).split(batch):
                if len(rows) < 2:
                    continue
                pick = torch.randint(0, neighbours.shape[1], (len(rows),), generator=generator)
                both = F.softmax(head(torch.cat([inputs[rows], inputs[neighbours[rows, pick]]])), dim=1)
                loss = scan_loss(both[: len(rows)], both[len(rows):], self.entropy_weight)[0]
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        for _ in range(int(self.self_label_epochs)):  # step 3: confident codes teach the rest
            head.eval()
            with torch.no_grad():
                confidence, target = F.softmax(head(inputs), dim=1).max(dim=1)
            head.train()
            sure = torch.nonzero(confidence > self.threshold).flatten()
            if len(sure) < 2:
                break
            counts = torch.bincount(target[sure], minlength=k).float()
            weight = torch.where(counts > 0, counts.sum() / (k * counts.clamp_min(1)), torch.zeros_like(counts))
            for chunk in sure[torch.randperm(len(sure), generator=generator)].split(batch):
                if len(chunk) < 2:
                    continue
                noisy = inputs[chunk] + self.noise * torch.randn(inputs[chunk].shape, generator=generator)
                loss = F.cross_entropy(head(noisy), target[chunk], weight=weight)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return head.eval()

    # -- using it -----------------------------------------------------------------------
    def _predict_inputs(self, inputs: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return self.head_(inputs).argmax(dim=1).numpy().astype(np.int64)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Cluster probabilities of new codes. x: (M, D) -> (M, k)."""
        if not hasattr(self, "head_"):
            raise RuntimeError("call fit(x) before predict(x)")
        inputs = torch.as_tensor((np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_, dtype=torch.float32)
        with torch.no_grad(), self._threads():
            return F.softmax(self.head_(inputs), dim=1).numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The head's most probable cluster for each new code. x: (M, D) -> (M,)."""
        return self.predict_proba(x).argmax(axis=1)

    def fit_predict(self, x: np.ndarray, y: None = None) -> np.ndarray:
        """``fit(x)`` and return the training labels ``(N,)``."""
        return self.fit(x).labels_
