"""The boosted trees of a saved model, read and evaluated without sklearn and without pickle.

Model folders are loaded from places we do not control, and unpickling runs code (the networks are
loaded with ``weights_only`` for the same reason). So each fitted ensemble's trees (sklearn's node
arrays: feature, threshold, missing-goes-left, children, leaf value; plus the baseline log-odds) are
stored as plain arrays in one ``.npz`` read with ``allow_pickle=False``, checked on loading (indices in
range, children after their parent, so every path ends at a leaf), and evaluated here by a vectorised
traversal that follows sklearn's rule (NaN goes where the split learned; else ``value <= threshold``
goes left). Fitting them is :mod:`ecgtrain.gbm`'s job; serving needs only this module.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Records evaluated at once: bounds the (records, trees) traversal arrays to a few tens of MB.
CHUNK_ELEMENTS = 2_000_000
#: The columns :func:`gbm_inputs` adds after the global features.
GBM_EXTRA_COLUMNS = ("age", "male", "female")
NODE_FIELDS = ("feature", "threshold", "missing_left", "left", "right", "value", "is_leaf")


def gbm_inputs(values: np.ndarray, present: np.ndarray, ages: np.ndarray, sexes: Sequence[str | None]) -> np.ndarray:
    """(N, F + 3) float64 tree input: the features in their own units with NaN where absent, age (NaN when
    unknown), male and female indicators. Unlike the network's input nothing is scaled or imputed: a split
    does not care about units, and a NaN lets each split learn where missing records belong."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    present = np.atleast_2d(np.asarray(present, dtype=bool)) & np.isfinite(values)
    age = np.asarray(ages, dtype=np.float64).reshape(-1, 1)
    male = np.array([[s == "Male"] for s in sexes], dtype=np.float64).reshape(-1, 1)
    female = np.array([[s == "Female"] for s in sexes], dtype=np.float64).reshape(-1, 1)
    return np.concatenate([np.where(present, values, np.nan), np.where(np.isfinite(age), age, np.nan), male, female], 1)


def _sigmoid(raw: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * raw))  # overflow-free, equal to 1 / (1 + exp(-raw)) to rounding


@dataclass(frozen=True)
class Forest:
    """The trees of K x C binary boosted models (K fold members, C classes), flattened.

    Nodes of all trees lie end to end (``tree_start`` gives each tree's first node; ``left``/``right``
    are indices within their tree); tree t adds its leaf value to model ``owner[t]`` = member * C + class,
    whose log-odds start at ``baseline[member, class]``.
    """

    feature: np.ndarray  # (M,) int64
    threshold: np.ndarray  # (M,) float64
    missing_left: np.ndarray  # (M,) bool
    left: np.ndarray  # (M,) int64, within the tree
    right: np.ndarray  # (M,) int64, within the tree
    value: np.ndarray  # (M,) float64, leaves' (already shrunk) values
    is_leaf: np.ndarray  # (M,) bool
    tree_start: np.ndarray  # (T + 1,) int64
    owner: np.ndarray  # (T,) int64
    baseline: np.ndarray  # (K, C) float64
    num_features: int

    @property
    def members(self) -> int:
        return int(self.baseline.shape[0])

    @property
    def classes(self) -> int:
        return int(self.baseline.shape[1])

    def raw(self, inputs: np.ndarray) -> np.ndarray:
        """(N, K, C) log-odds of every member's model of every class."""
        inputs = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
        if inputs.shape[1] != self.num_features:
            raise ValueError(f"tree input has {inputs.shape[1]} columns; the trees were fitted on {self.num_features}")
        trees = len(self.owner)
        out = np.broadcast_to(self.baseline, (len(inputs), *self.baseline.shape)).copy()
        if not trees or not len(inputs):
            return out
        owners = np.zeros((trees, self.members * self.classes))
        owners[np.arange(trees), self.owner] = 1.0
        step = max(1, CHUNK_ELEMENTS // trees)
        for start in range(0, len(inputs), step):
            sums = self._leaf_values(inputs[start : start + step]) @ owners  # (n, K * C)
            out[start : start + step] += sums.reshape(len(sums), self.members, self.classes)
        return out

    def _leaf_values(self, inputs: np.ndarray) -> np.ndarray:
        """(n, T) value of the leaf each record reaches in each tree: all records and trees step down together."""
        roots = self.tree_start[:-1]
        node = np.broadcast_to(roots, (len(inputs), len(roots))).copy()
        offset = np.repeat(roots, np.diff(self.tree_start))
        left, right = self.left + offset, self.right + offset
        rows = np.arange(len(inputs))[:, None]
        for _ in range(int(np.diff(self.tree_start).max())):  # children follow parents: depth < tree size
            inner = ~self.is_leaf[node]
            if not inner.any():
                break
            x = inputs[rows, self.feature[node]]
            go_left = np.where(np.isnan(x), self.missing_left[node], x <= self.threshold[node])
            node = np.where(inner, np.where(go_left, left[node], right[node]), node)
        return self.value[node]

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """(N, C) mean over members of each member's probability (as the network ensemble averages)."""
        return _sigmoid(self.raw(inputs)).mean(axis=1)

    def to_bytes(self) -> bytes:
        """The ``.npz`` file's content (plain numeric arrays only)."""
        buffer = io.BytesIO()
        arrays = {name: getattr(self, name) for name in (*NODE_FIELDS, "tree_start", "owner", "baseline")}
        np.savez(buffer, num_features=np.int64(self.num_features), **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Forest:
        """Read and check :meth:`to_bytes` output; anything malformed is a ValueError saying what."""
        try:
            stored = np.load(io.BytesIO(data), allow_pickle=False)
            if not isinstance(stored, np.lib.npyio.NpzFile):
                raise ValueError("one array, not an .npz archive")
            with stored:
                arrays = {name: np.asarray(stored[name]) for name in stored.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
            raise ValueError(f"not a tree file ({error})") from None
        missing = sorted({*NODE_FIELDS, "tree_start", "owner", "baseline", "num_features"} - set(arrays))
        if missing:
            raise ValueError(f"tree file lacks {missing}")
        forest = cls(
            feature=arrays["feature"].astype(np.int64),
            threshold=arrays["threshold"].astype(np.float64),
            missing_left=arrays["missing_left"].astype(bool),
            left=arrays["left"].astype(np.int64),
            right=arrays["right"].astype(np.int64),
            value=arrays["value"].astype(np.float64),
            is_leaf=arrays["is_leaf"].astype(bool),
            tree_start=arrays["tree_start"].astype(np.int64),
            owner=arrays["owner"].astype(np.int64),
            baseline=arrays["baseline"].astype(np.float64),
            num_features=int(arrays["num_features"]),
        )
        forest.check()
        return forest

    def check(self) -> None:
        """Refuse structures the traversal could not walk: bad shapes, indices out of range, a child that does
        not come after its parent (which could loop or leave a path without a leaf)."""
        nodes = len(self.feature)
        if any(getattr(self, name).shape != (nodes,) for name in NODE_FIELDS):
            raise ValueError("tree file: node arrays differ in length")
        if self.baseline.ndim != 2 or self.tree_start.ndim != 1 or self.owner.shape != (len(self.tree_start) - 1,):
            raise ValueError("tree file: baseline, tree_start or owner has the wrong shape")
        if len(self.tree_start) < 1 or self.tree_start[0] != 0 or self.tree_start[-1] != nodes:
            raise ValueError("tree file: tree_start does not cover the nodes")
        sizes = np.diff(self.tree_start)
        if np.any(sizes < 1) or np.any((self.owner < 0) | (self.owner >= self.baseline.size)):
            raise ValueError("tree file: an empty tree or a tree of no model")
        local = np.arange(nodes) - np.repeat(self.tree_start[:-1], sizes)
        size = np.repeat(sizes, sizes)
        inner = ~self.is_leaf
        for child in (self.left, self.right):
            if np.any(inner & ((child <= local) | (child >= size))):
                raise ValueError("tree file: a child index outside its tree or not after its parent")
        if np.any(inner & ((self.feature < 0) | (self.feature >= self.num_features))):
            raise ValueError(f"tree file: a feature index outside 0..{self.num_features - 1}")
        if not (np.all(np.isfinite(self.value[self.is_leaf])) and np.all(np.isfinite(self.baseline))):
            raise ValueError("tree file: a leaf value or baseline is not finite")
        if np.any(np.isnan(self.threshold[inner])):
            raise ValueError("tree file: a split threshold is NaN")


def assemble(baseline: np.ndarray, trees: list[list[list[dict[str, np.ndarray]]]], num_features: int) -> Forest:
    """A :class:`Forest` from (K, C) baselines and ``trees[member][class]`` lists of node arrays."""
    parts, owner, sizes = [], [], []
    classes = baseline.shape[1]
    for k, member in enumerate(trees):
        for c, model in enumerate(member):
            for tree in model:
                parts.append(tree)
                owner.append(k * classes + c)
                sizes.append(len(tree["feature"]))
    empty = {"feature": np.int64, "threshold": np.float64, "missing_left": bool, "left": np.int64}
    empty |= {"right": np.int64, "value": np.float64, "is_leaf": bool}
    columns = {
        name: np.concatenate([p[name] for p in parts]) if parts else np.zeros(0, empty[name]) for name in NODE_FIELDS
    }
    forest = Forest(
        **columns,
        tree_start=np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64),
        owner=np.asarray(owner, dtype=np.int64),
        baseline=np.asarray(baseline, dtype=np.float64),
        num_features=int(num_features),
    )
    forest.check()
    return forest
