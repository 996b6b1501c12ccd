"""A sum tree over replay slots: proportional sampling for prioritized replay (Schaul et al. 2016) in
O(log n) per draw, vectorized over a batch, as dopamine's ``jax/replay_memory/sum_tree.py`` (Apache-2.0)."""

from __future__ import annotations

import numpy as np


class SumTree:
    """Leaves hold non-negative values (priorities), inner nodes the sums of their children.

    ``query(targets)`` finds, for each target in [0, total), the leaf whose cumulative sum first exceeds
    it: inverse-CDF sampling of leaf ``i`` with probability ``value[i] / total``. ``max_recorded`` is the
    largest value ever set (1.0 before any), the priority dopamine gives new transitions.
    """

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.depth = max(int(np.ceil(np.log2(max(self.capacity, 1)))), 0)
        self._first_leaf = (1 << self.depth) - 1
        self.nodes = np.zeros(self._first_leaf + (1 << self.depth), np.float64)
        self.max_recorded = 1.0

    @property
    def total(self) -> float:
        return float(self.nodes[0])

    def get(self, index: np.ndarray) -> np.ndarray:
        return self.nodes[self._first_leaf + np.asarray(index)]

    def set(self, index: np.ndarray | int, value: np.ndarray | float) -> None:
        """Set leaves ``index`` to ``value`` (a repeated index keeps its first value, as dopamine's)."""
        index = np.atleast_1d(np.asarray(index, np.int64))
        value = np.broadcast_to(np.asarray(value, np.float64), index.shape)
        if value.size:
            self.max_recorded = max(self.max_recorded, float(value.max()))
        nodes, first = np.unique(self._first_leaf + index, return_index=True)
        delta = value[first] - self.nodes[nodes]
        for _ in range(self.depth):
            np.add.at(self.nodes, nodes, delta)
            nodes = (nodes - 1) // 2
        np.add.at(self.nodes, nodes, delta)

    def query(self, targets: np.ndarray) -> np.ndarray:
        """The leaf index of each target in [0, total) (inverse CDF), walking all targets down together."""
        targets = np.array(targets, np.float64)
        node = np.zeros(targets.shape, np.int64)
        for _ in range(self.depth):
            left = 2 * node + 1
            sums = self.nodes[left]
            go_left = targets < sums
            node = np.where(go_left, left, left + 1)
            targets = np.where(go_left, targets, targets - sums)
        return node - self._first_leaf
