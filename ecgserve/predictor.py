"""Loading a trained lead-set network and classifying records with it.

``load_predictor(folder, leads)`` picks the network trained on exactly those leads, or else, in a
complete model folder, the closest one: the smallest trained lead set containing all requested
leads (the missing ones are fed as zero, flat leads, which the signal layer marks unusable), or
failing that the one sharing the most leads (the requested leads it lacks are dropped). Anything
but an exact match is logged as a warning that says which leads are zero-filled and which are
dropped, since accuracy then rests on a network that never saw this lead set. A folder whose
training did not finish serves only the lead sets it has: anything else is an error there, since
the fallback would stand in for a network that was meant to exist.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgio.leads import canonical_lead, sort_leads
from ecgserve.blending import combine
from ecgserve.decision import decide
from ecgserve.device import apply_threads, resolve_device
from ecgserve.ensemble import build_ensemble
from ecgserve.forest import GBM_EXTRA_COLUMNS, Forest
from ecgserve.inference import RecordInput, check_aggregation, predict_records
from ecgserve.model_folder import (
    MANIFEST,
    ModelFolderError,
    incomplete_reason,
    load_member,
    load_weights,
    read_manifest,
)
from ecgserve.record_inputs import RecordPreparer
from ecgserve.tabular import TabularScaler
from ecgsignal.config import SignalConfig
from ecgsignal.features import FEATURE_NAMES

log = logging.getLogger(__name__)

#: Windows per network call in :meth:`Predictor.probabilities_batch` (whole records are added until a
#: batch holds at least this many, so a batch never exceeds it by more than one record's windows).
DEFAULT_BATCH_WINDOWS = 16


@dataclass
class Predictor:
    """One trained lead-set network with everything needed to go from millivolts to labels."""

    leads: tuple[str, ...]
    network: torch.nn.Module
    thresholds: np.ndarray
    scaler: TabularScaler
    config: SignalConfig
    classes: tuple[str, ...]
    device: torch.device
    decision_rule: str = "threshold"
    window_aggregation: str = "mean"
    features_member: Forest | None = None  # boosted trees on the global features (``features_member: gbm``)
    member_weights: np.ndarray | None = None  # (2, C) weights of the networks' and the trees' probabilities
    criteria_weights: np.ndarray | None = None  # (C,) weights of the measured criteria (ecgserve.blending)
    network_calibration: np.ndarray | None = None  # (2, C) the networks' calibration (ecgserve.blending)

    @property
    def preparer(self) -> RecordPreparer:
        """Everything but the network: what worker processes need to prepare records for it."""
        return RecordPreparer(self.leads, self.config, self.scaler, with_trees=self.features_member is not None)

    def probabilities(
        self, signal: np.ndarray, fs: float, age: float = float("nan"), sex: str | None = None
    ) -> np.ndarray:
        """(num_classes,) probabilities for a (len(self.leads), N) signal in mV, rows in ``self.leads`` order."""
        return self.probabilities_batch([self.preparer.prepare(signal, fs, age, sex)])[0]

    def probabilities_batch(
        self, items: Sequence[RecordInput], batch_windows: int = DEFAULT_BATCH_WINDOWS
    ) -> np.ndarray:
        """(len(items), num_classes) probabilities of prepared records (``RecordPreparer.prepare``).

        The windows of consecutive records share network calls of at least ``batch_windows`` windows
        (records are never split, so a call holds fewer than ``batch_windows`` + one record's windows,
        at most 8 for the default settings even on 30-min records). A record's probabilities depend
        on which records share its batch only by float32 rounding (below 1e-6); ``batch_windows=1``
        runs each record alone, exactly as :meth:`probabilities` does.
        """
        if not items:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        if batch_windows < 1:
            raise ValueError(f"batch_windows must be at least 1, got {batch_windows}")
        width = self.scaler.num_inputs  # with trees, each item's tabular row carries their input after it
        network_items = [(w, f, np.asarray(t[:width], dtype=np.float32)) for w, f, t in items]
        probabilities = predict_records(
            self.network, network_items, self.device, batch_size=batch_windows, aggregation=self.window_aggregation
        )
        if self.features_member is not None:
            probabilities = self.with_trees(probabilities, np.stack([tabular[width:] for _, _, tabular in items]))
        return np.clip(np.nan_to_num(probabilities, nan=0.0), 0.0, 1.0)

    def with_trees(self, probabilities: np.ndarray, tree_inputs: np.ndarray) -> np.ndarray:
        """(N, C) networks' probabilities mixed with the features member's on (N, F) tree inputs
        (:func:`ecgserve.forest.gbm_inputs`) by the stored weights; unchanged when the model has no trees."""
        if self.features_member is None or self.member_weights is None:
            return probabilities
        return combine(
            probabilities,
            self.features_member,
            self.member_weights,
            tree_inputs,
            self.classes,
            self.network_calibration,
            self.criteria_weights,
        ).astype(np.float32)

    def labels(self, probabilities: np.ndarray) -> np.ndarray:
        """Binary decisions at the tuned thresholds, by the model's decision rule."""
        return decide(probabilities, self.thresholds, self.decision_rule).astype(int)


def choose_entry(available: dict[str, dict[str, Any]], leads: Sequence[str]) -> tuple[str, bool]:
    """The manifest key to use for ``leads`` and whether it is an exact match."""
    wanted = set(sort_leads(canonical_lead(lead) for lead in leads))
    sets = {key: set(entry["leads"]) for key, entry in available.items()}
    for key, have in sets.items():
        if have == wanted:
            return key, True
    supersets = [key for key, have in sets.items() if wanted <= have]
    if supersets:
        return min(supersets, key=lambda key: len(sets[key])), False
    return max(sets, key=lambda key: (len(sets[key] & wanted), -len(sets[key]))), False


def fallback_warning(folder: str | Path, requested: Sequence[str], used: Sequence[str]) -> str:
    """What running the ``used`` network on ``requested`` leads does to the input, in words."""
    wanted = {canonical_lead(lead) for lead in requested}
    have = set(used)
    parts = []
    if have - wanted:
        parts.append(f"its leads {'-'.join(sort_leads(have - wanted))} are absent and zero-filled")
    if wanted - have:
        parts.append(f"the leads {'-'.join(sort_leads(wanted - have))} are dropped")
    return (
        f"{folder}: no network trained on leads {'-'.join(sort_leads(wanted))}; using the {'-'.join(used)}"
        f" network ({' and '.join(parts)})"
    )


def load_predictor(folder: str | Path, leads: Sequence[str], device: str = "auto", threads: int = 0) -> Predictor:
    """Load the network for ``leads`` from a model folder (see :func:`choose_entry`); torch then runs on
    ``threads`` intra-op threads (0: :func:`ecgserve.device.default_threads`).

    A retrain that commits while this loads replaces the manifest and then removes the old weights, so
    the load can find its weights gone: when the manifest was replaced meanwhile, the new model is loaded
    instead (once), rather than failing every record of the run."""
    before = _manifest_stamp(folder)
    try:
        return _load_predictor(folder, leads, device, threads)
    except ModelFolderError:
        if _manifest_stamp(folder) == before:
            raise
        log.warning("%s: the model was replaced while it loaded (a training committed); loading the new one", folder)
        return _load_predictor(folder, leads, device, threads)


def _manifest_stamp(folder: str | Path) -> tuple[int, int, int] | None:
    """What changes when a commit replaces the manifest (its rename gives a new inode)."""
    try:
        info = (Path(folder) / MANIFEST).stat()
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def _load_predictor(folder: str | Path, leads: Sequence[str], device: str, threads: int) -> Predictor:
    manifest = read_manifest(folder)
    key, exact = choose_entry(manifest["models"], leads)
    entry = manifest["models"][key]
    unfinished = incomplete_reason(manifest)
    if unfinished:
        log.warning("%s: %s; it serves only the lead sets %s", folder, unfinished, ", ".join(manifest["models"]))
        if not exact:
            raise ModelFolderError(
                f"{folder}: {unfinished}; it has no network for leads {'-'.join(leads)}"
                f" (it has {', '.join(manifest['models'])}); retrain the folder"
            )
    if not exact:
        log.warning(fallback_warning(folder, leads, entry["leads"]))
    apply_threads(threads)
    try:
        network = build_ensemble(entry["architecture"], entry["model_kwargs"], int(entry["members"]))
        network.load_state_dict(load_weights(folder, entry))
        config = SignalConfig.from_dict(manifest["signal_config"])
        decision_rule = str(manifest["settings"].get("decision_rule", "threshold"))
        aggregation = str(manifest["settings"].get("window_aggregation", "mean"))
        decide(np.zeros(1), np.zeros(1), decision_rule)  # unknown rules fail here, not on the first record
        check_aggregation(aggregation)
        forest, member_weights, criteria_weights, network_calibration = _features_member(folder, entry)
    except ModelFolderError:
        raise
    except (KeyError, RuntimeError, TypeError, ValueError) as error:
        raise ModelFolderError(f"{folder}: network {key} does not match this code version ({error})") from None
    torch_device = resolve_device(device)
    return Predictor(
        leads=tuple(entry["leads"]),
        network=network.to(torch_device).eval(),
        thresholds=np.asarray(entry["thresholds"], dtype=np.float64),
        scaler=TabularScaler.from_dict(entry["tabular"]),
        config=config,
        classes=tuple(manifest["classes"]),
        device=torch_device,
        decision_rule=decision_rule,
        window_aggregation=aggregation,
        features_member=forest,
        member_weights=member_weights,
        criteria_weights=criteria_weights,
        network_calibration=network_calibration,
    )


def _features_member(
    folder: str | Path, entry: dict[str, Any]
) -> tuple[Forest | None, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The lead set's trees, blend weights, criterion weights and network calibration (None where the model
    has none), or all None when it has no features member; a tree file that is not what its entry says, or
    weights of the wrong shape, are a ``ModelFolderError``."""
    member = entry.get("features_member")
    if member is None:
        return None, None, None, None
    if not isinstance(member, dict) or member.get("kind") != "gbm":
        raise ValueError(f"unknown features member {member!r}")
    data = load_member(folder, member)
    try:
        forest = Forest.from_bytes(data)
    except ValueError as error:
        raise ModelFolderError(f"{Path(folder) / member['file']}: {error}") from None
    weights = np.asarray(member["weights"], dtype=np.float64)
    classes = len(entry["thresholds"])
    if weights.shape != (2, classes) or forest.classes != classes:
        raise ValueError(f"features member of {forest.classes} classes, weights {weights.shape}; expected {classes}")
    if forest.num_features != len(FEATURE_NAMES) + len(GBM_EXTRA_COLUMNS):
        raise ValueError(
            f"features member reads {forest.num_features} inputs; this code gives {len(FEATURE_NAMES) + len(GBM_EXTRA_COLUMNS)}"
        )
    criteria_weights = None
    if "criteria_weights" in member:
        criteria_weights = np.asarray(member["criteria_weights"], dtype=np.float64)
        if criteria_weights.shape != (classes,) or not np.all((criteria_weights >= 0) & (criteria_weights <= 1)):
            raise ValueError(f"criteria weights {member['criteria_weights']!r}; expected {classes} weights in [0, 1]")
    network_calibration = None
    if "network_calibration" in member:
        network_calibration = np.asarray(member["network_calibration"], dtype=np.float64)
        if network_calibration.shape != (2, classes) or not np.all(np.isfinite(network_calibration)):
            raise ValueError(
                f"network calibration of shape {network_calibration.shape}; expected (2, {classes}) numbers"
            )
    return forest, weights, criteria_weights, network_calibration
