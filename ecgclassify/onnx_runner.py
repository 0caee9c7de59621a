"""Runs an exported model (``ecg-export``) with numpy and onnxruntime only: no torch, no scikit-learn.

An export folder holds, per lead set, the network ensemble as ONNX (``net_<leads>.onnx``: windows
(W, L, T), fiducial channels (W, C, T), tabular rows (W, D) -> logits (W, K)), the boosted trees as
plain arrays (``trees_<leads>.npz``) and, in ``export.json``, the thresholds, decision rule, window
aggregation and blend weights. This file is copied into the folder, so the folder is all a
deployment needs beside numpy and onnxruntime.

Its input is a record's network input: the windows, fiducial channels and tabular row that
``ecgserve.record_inputs.RecordPreparer.prepare`` makes from a signal in mV (the signal layer,
numpy + scipy + PyWavelets, does that part; the predictor and this runner share it). Its output equals
``Predictor.probabilities`` of the torch model within float32 rounding (tests/test_own_records.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "ecg-leads-onnx"
FORMAT_VERSION = 1


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class Trees:
    """Boosted trees as flat node arrays (see ``ecgserve.forest.Forest``): every record and tree step down
    together; a missing value goes where the split learned, else ``value <= threshold`` goes left."""

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as stored:
            a = {name: np.asarray(stored[name]) for name in stored.files}
        self.feature, self.threshold = a["feature"].astype(np.int64), a["threshold"].astype(np.float64)
        self.missing_left, self.is_leaf = a["missing_left"].astype(bool), a["is_leaf"].astype(bool)
        self.value, self.baseline = a["value"].astype(np.float64), a["baseline"].astype(np.float64)
        starts = a["tree_start"].astype(np.int64)
        self.roots = starts[:-1]
        offset = np.repeat(self.roots, np.diff(starts))
        self.left, self.right = a["left"].astype(np.int64) + offset, a["right"].astype(np.int64) + offset
        self.owner = a["owner"].astype(np.int64)
        self.depth = int(np.diff(starts).max()) if len(starts) > 1 else 0

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """(N, C): the mean over fold members of each member's probability."""
        x = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
        members, classes = self.baseline.shape
        raw = np.broadcast_to(self.baseline, (len(x), members, classes)).copy()
        if len(self.roots):
            node = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
            rows = np.arange(len(x))[:, None]
            for _ in range(self.depth):
                inner = ~self.is_leaf[node]
                if not inner.any():
                    break
                value = x[rows, self.feature[node]]
                go_left = np.where(np.isnan(value), self.missing_left[node], value <= self.threshold[node])
                node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
            sums = np.zeros((len(x), members * classes))
            np.add.at(sums.T, self.owner, self.value[node].T)
            raw += sums.reshape(len(x), members, classes)
        return _sigmoid(raw).mean(axis=1)


def aggregate(probabilities: np.ndarray, rule: str) -> np.ndarray:
    """(W, C) window probabilities -> (C,): ``mean``, ``max`` or ``top<k>`` (mean of the k highest)."""
    if rule == "mean":
        return probabilities.mean(axis=0)
    if rule == "max":
        return probabilities.max(axis=0)
    if rule.startswith("top") and rule[3:].isdigit():
        return np.sort(probabilities, axis=0)[-int(rule[3:]) :].mean(axis=0)
    raise ValueError(f"unknown window aggregation {rule!r}")


def decide(probabilities: np.ndarray, thresholds: np.ndarray, rule: str) -> np.ndarray:
    """Decisions at the thresholds; ``top_if_empty`` adds the class closest to its threshold when none passes."""
    out = probabilities >= thresholds
    if rule == "top_if_empty" and not out.any() and (probabilities > 0).any():
        out = out.copy()
        out[int(np.argmax(probabilities / np.maximum(thresholds, 1e-6)))] = True
    elif rule not in ("threshold", "top_if_empty"):
        raise ValueError(f"unknown decision rule {rule!r}")
    return out


def _load_criteria(folder: Path, feature_names: tuple[str, ...]) -> Any:
    """The criteria module copied beside this runner (``criteria.py``), reading features by the exported names."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("exported_criteria", folder / "criteria.py")
    if spec is None or spec.loader is None:
        raise ValueError(f"{folder}: criteria.py missing from the export folder")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.use_feature_names(feature_names)
    return module


class LeadSetModel:
    """One lead set's exported network, trees and thresholds."""

    def __init__(
        self, folder: Path, entry: dict[str, Any], threads: int = 0, feature_names: tuple[str, ...] = ()
    ) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.leads = tuple(entry["leads"])
        self.session = onnxruntime.InferenceSession(
            str(folder / entry["onnx"]), options, providers=["CPUExecutionProvider"]
        )
        self.thresholds = np.asarray(entry["thresholds"], dtype=np.float64)
        self.decision_rule = str(entry["decision_rule"])
        self.aggregation = str(entry["window_aggregation"])
        self.tabular_width = int(entry["tabular_width"])
        trees = entry.get("trees")
        self.trees = Trees(folder / trees["file"]) if trees else None
        self.weights = np.asarray(trees["weights"], dtype=np.float64) if trees else None
        calibration = (trees or {}).get("network_calibration")
        self.calibration = None if calibration is None else np.asarray(calibration, dtype=np.float64)
        self.criteria_weights = None
        if trees and "criteria_weights" in trees:
            self.criteria_weights = np.asarray(trees["criteria_weights"], dtype=np.float64)
            self.criteria_classes = list(trees["criteria_classes"])
            self.criteria = _load_criteria(folder, feature_names)

    def probabilities(self, windows: np.ndarray, fiducials: np.ndarray, tabular: np.ndarray) -> np.ndarray:
        """(C,) probabilities of one record from its network input (windows (W, L, T), fiducials (W, C, T),
        tabular row: the network's part, then the trees' input when the model has trees)."""
        count = len(windows)
        row = np.asarray(tabular)
        feeds = {
            "signal": np.asarray(windows, dtype=np.float32),
            "fiducials": np.asarray(fiducials, dtype=np.float32),
            "tabular": np.repeat(row[None, : self.tabular_width].astype(np.float32), count, axis=0),
        }
        logits = self.session.run(None, feeds)[0]
        probabilities = aggregate(_sigmoid(logits.astype(np.float64)).astype(np.float32), self.aggregation)
        if self.trees is not None and self.weights is not None:
            tree_input = row[self.tabular_width :].astype(np.float64)
            trees = self.trees.probabilities(tree_input[None])[0]
            if self.calibration is not None:  # the networks calibrated before the blend, as trained
                z = np.log(np.clip(probabilities, 1e-6, 1 - 1e-6)) - np.log1p(-np.clip(probabilities, 1e-6, 1 - 1e-6))
                probabilities = _sigmoid(self.calibration[0] * z + self.calibration[1])
            probabilities = self.weights[0] * probabilities + self.weights[1] * trees
            if self.criteria_weights is not None:  # then the measured clinical criteria, by their weights
                probabilities = self._with_criteria(probabilities, tree_input)
        return np.clip(np.nan_to_num(probabilities, nan=0.0), 0.0, 1.0).astype(np.float32)

    def _with_criteria(self, probabilities: np.ndarray, tree_input: np.ndarray) -> np.ndarray:
        """The criteria mixed in as ``ecgserve.blending.mix_criteria`` does: tree input = features, age, male, female."""
        features = len(self.criteria.FEATURE_NAMES)
        male, female = tree_input[features + 1], tree_input[features + 2]
        sex = "Male" if male == 1 else "Female" if female == 1 else None
        scores = self.criteria.criterion_scores(tree_input[None, :features], [sex], self.criteria_classes)[0]
        weights = self.criteria_weights
        assert weights is not None
        measured = np.isfinite(scores) & (weights > 0)
        mixed = (1.0 - weights) * probabilities + weights * np.nan_to_num(scores)
        return np.where(measured, mixed, probabilities)

    def decisions(self, probabilities: np.ndarray) -> np.ndarray:
        return decide(np.asarray(probabilities, dtype=np.float64), self.thresholds, self.decision_rule)


class ExportedModel:
    """An ``ecg-export`` folder: ``lead_sets``, ``classes``, and :meth:`for_leads` giving a lead set's model."""

    def __init__(self, folder: str | Path, threads: int = 0) -> None:
        self.folder = Path(folder)
        self.meta = json.loads((self.folder / "export.json").read_text())
        if self.meta.get("format") != FORMAT or self.meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{self.folder}: not an {FORMAT} v{FORMAT_VERSION} export folder")
        self.classes = tuple(self.meta["classes"])
        self.threads = threads
        self._loaded: dict[str, LeadSetModel] = {}

    @property
    def lead_sets(self) -> list[tuple[str, ...]]:
        return [tuple(entry["leads"]) for entry in self.meta["lead_sets"].values()]

    def for_leads(self, leads: tuple[str, ...] | list[str]) -> LeadSetModel:
        """The model trained on exactly ``leads``, else the smallest holding them all, else the one sharing most."""
        wanted = set(leads)
        entries = self.meta["lead_sets"]
        sets = {key: set(entry["leads"]) for key, entry in entries.items()}
        exact = [key for key, have in sets.items() if have == wanted]
        supersets = sorted((key for key, have in sets.items() if wanted <= have), key=lambda key: len(sets[key]))
        key = (exact or supersets or [max(sets, key=lambda k: (len(sets[k] & wanted), -len(sets[k])))])[0]
        if key not in self._loaded:
            names = tuple(self.meta.get("feature_names", ()))
            self._loaded[key] = LeadSetModel(self.folder, entries[key], self.threads, names)
        return self._loaded[key]


__all__ = ["ExportedModel", "LeadSetModel", "Trees", "aggregate", "decide"]
