"""``features_member: gbm``: gradient-boosted trees on the global PQRST features, stored without pickle.

Why a second member: the network reads the same global features through a small MLP, which needs them
scaled and imputed and learns little from a few hundred records; boosted trees split on the raw
values (ms, mV, bpm), take a missing measurement as its own branch, and are strong on exactly this
kind of table. Per class one binary :class:`sklearn.ensemble.HistGradientBoostingClassifier` is
trained on each fold's training records (the networks' folds), so every training record gets an
out-of-fold tree probability to fit the blend weight and the thresholds on
(:func:`ecgtrain.stacking.add_features_member`); the k fold models are kept and averaged, as the
k fold networks are. A class with fewer than :data:`MIN_POSITIVES` positives (or negatives) in a
fold gets its prevalence there instead of trees fitted to one or two records.

Why not pickle: model folders are loaded from places we do not control, and unpickling runs code
(the networks are loaded with ``weights_only`` for the same reason). So each fitted ensemble's
trees (sklearn's ``_predictors`` node arrays: feature, threshold, missing-goes-left, children,
leaf value; plus the baseline log-odds) are exported to plain arrays in one ``.npz`` read with
``allow_pickle=False``, checked on loading (indices in range, children after their parent, so every
path ends at a leaf), and evaluated here by a vectorised traversal that follows sklearn's rule
(NaN goes where the split learned; else ``value <= threshold`` goes left).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The trees' settings, chosen by cross-validation on the shared records (docs/results/classification.md, "Features member").
GBM_PARAMS: dict[str, Any] = {
    "max_iter": 150,
    "learning_rate": 0.05,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 10,
    "l2_regularization": 1.0,
}
#: Keys the ``gbm_kwargs`` setting may change (early stopping stays off: every fold then fits the same way).
TUNABLE = ("max_iter", "learning_rate", "max_leaf_nodes", "min_samples_leaf", "l2_regularization", "max_depth")
#: A class needs this many positives and negatives among a fold's training records to get trees.
MIN_POSITIVES = 3
#: Probabilities of constant (prevalence) models are kept inside [EPS, 1 - EPS] so their log-odds stay finite.
EPS = 1e-6
#: Records evaluated at once: bounds the (records, trees) traversal arrays to a few tens of MB.
CHUNK_ELEMENTS = 2_000_000
#: The columns :func:`gbm_inputs` adds after the global features.
GBM_EXTRA_COLUMNS = ("age", "male", "female")
NODE_FIELDS = ("feature", "threshold", "missing_left", "left", "right", "value", "is_leaf")


def gbm_params(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The trees' parameters: :data:`GBM_PARAMS` with ``overrides`` (the ``gbm_kwargs`` setting); an unknown
    key is a ValueError naming it."""
    if not isinstance(overrides or {}, dict):
        raise ValueError(f"gbm_kwargs is {overrides!r}; expected an object of parameters")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(TUNABLE))
    if unknown:
        raise ValueError(f"gbm_kwargs: unknown key(s) {unknown}; allowed: {list(TUNABLE)}")
    return {**GBM_PARAMS, **overrides}


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


def export_classifier(model: Any) -> tuple[float, list[dict[str, np.ndarray]]]:
    """(baseline log-odds, trees as node arrays) of a fitted binary ``HistGradientBoostingClassifier``."""
    if len(model.classes_) != 2 or model.n_trees_per_iteration_ != 1:
        raise ValueError("only binary classifiers (one tree per iteration) can be exported")
    trees = []
    for iteration in model._predictors:
        nodes = iteration[0].nodes
        if np.any(nodes["is_categorical"]):
            raise ValueError("categorical splits cannot be exported")
        trees.append(
            {
                "feature": nodes["feature_idx"].astype(np.int64),
                "threshold": nodes["num_threshold"].astype(np.float64),
                "missing_left": nodes["missing_go_to_left"].astype(bool),
                "left": nodes["left"].astype(np.int64),
                "right": nodes["right"].astype(np.int64),
                "value": nodes["value"].astype(np.float64),
                "is_leaf": nodes["is_leaf"].astype(bool),
            }
        )
    return float(model._baseline_prediction.reshape(-1)[0]), trees


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


def fit_class(inputs: np.ndarray, target: np.ndarray, params: dict[str, Any], seed: int) -> tuple[float, list]:
    """(baseline, trees) of one class: boosted trees, or the prevalence when positives or negatives are too few."""
    target = np.asarray(target, dtype=bool)
    positives = int(target.sum())
    if min(positives, len(target) - positives) < MIN_POSITIVES:
        prevalence = np.clip(positives / max(len(target), 1), EPS, 1 - EPS)
        return float(np.log(prevalence / (1 - prevalence))), []
    from sklearn.ensemble import HistGradientBoostingClassifier  # imported here: only this member needs it

    model = HistGradientBoostingClassifier(**params, early_stopping=False, random_state=seed)
    # sklearn cannot bin a column without one value (a feature the lead set never measures); a constant
    # column is never split on either, so the trees are those of the column left out.
    model.fit(np.where(np.isnan(inputs).all(axis=0), 0.0, inputs), target)
    return export_classifier(model)


def train_forest(
    inputs: np.ndarray,
    targets: np.ndarray,
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    params: dict[str, Any],
    seed: int = 0,
) -> tuple[Forest, np.ndarray]:
    """One model per fold and class on the fold's training rows; returns the forest of all folds and the
    out-of-fold probabilities (the validation rows of each fold in turn, concatenated)."""
    targets = np.asarray(targets, dtype=bool)
    baseline = np.zeros((len(pairs), targets.shape[1]))
    trees: list[list[list[dict[str, np.ndarray]]]] = []
    oof = []
    for k, (train_rows, val_rows) in enumerate(pairs):
        member = []
        for c in range(targets.shape[1]):
            baseline[k, c], model = fit_class(inputs[train_rows], targets[train_rows, c], params, seed + k)
            member.append(model)
        trees.append(member)
        single = assemble(baseline[k : k + 1], [member], inputs.shape[1])
        oof.append(single.probabilities(inputs[val_rows]))
    return assemble(baseline, trees, inputs.shape[1]), np.concatenate(oof)
