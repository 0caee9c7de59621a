"""Training and inference settings: the defaults are the ones we use, a JSON file overrides them.

The Challenge harness calls ``training_code(data_directory, model_directory)`` with no room for
options, so overrides come from a JSON file named by the environment variable ``ECG_SETTINGS``
(keys are the field names below; unknown keys are an error, so a typo never silently trains the
default). ``ECG_DEVICE`` and ``ECG_THREADS`` override just those two fields, for running the same
settings file on a laptop and a GPU box.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ecgio.leads import LEAD_SETS
from ecgserve.errors import SettingsError
from ecgserve.runtime import env_overrides, settings_file

#: Whole-number settings and the least value each may take.
WHOLE_NUMBERS = {
    "epochs": 1,
    "batch_size": 1,
    "folds": 1,
    "patience": 0,
    "min_epochs": 0,
    "threshold_min_positives": 0,
    "threads": 0,
    "seed": 0,
}
#: Real-number settings: (lower test, upper test, what the message asks for).
REAL_NUMBERS = {
    "learning_rate": (lambda v: v > 0, lambda v: True, "a finite number > 0"),
    "weight_decay": (lambda v: v >= 0, lambda v: True, "a finite number >= 0"),
    "val_fraction": (lambda v: v > 0, lambda v: v < 1, "a number between 0 and 1 (both excluded)"),
    "max_pos_weight": (lambda v: v > 0, lambda v: True, "a finite number > 0"),
}


def default_cache_dir() -> str:
    """Where prepared records are cached between runs (``ECG_CACHE_DIR``, else ``~/.cache/ecg-leads``)."""
    return os.environ.get("ECG_CACHE_DIR") or str(Path.home() / ".cache" / "ecg-leads")


@dataclass(frozen=True)
class Settings:
    """Everything ``training_code`` and ``load_model`` need besides the data and the folder."""

    task: str = "challenge2021"
    architecture: str = "dual_crnn"
    branches: tuple[str, ...] = ("raw", "fiducial", "tabular")
    # "stacked": one network per group of ``stack_groups``, mixed per class by out-of-fold weights (chosen by
    # repeated cross-validation, README "Fusion"); "joint": one network over ``branches``. A settings file
    # that names ``branches`` but not ``fusion`` gets "joint": one network over those branches, as asked.
    fusion: str = "stacked"
    stack_groups: tuple[tuple[str, ...], ...] = (("raw", "fiducial", "tabular"), ("fiducial", "tabular"))
    stack_weights: str = "global"  # "global", "per_class" (ecgtrain.weight_rules.WEIGHT_RULES)
    features_member: str = "gbm"  # "gbm": boosted trees on the global features, blended (ecgtrain.gbm); "none"
    gbm_kwargs: dict[str, Any] = field(default_factory=dict)  # overrides of ecgtrain.gbm.GBM_PARAMS
    # "blend": measured clinical criteria mixed into the classes they define by fitted weights; "decide": also
    # deciding classes with too few training positives; "none" (ecgtrain.criteria)
    diagnostic_criteria: str = "blend"
    # the networks' probabilities calibrated before the blend with the trees (ecgtrain.calibration)
    network_calibration: str = "none"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    lead_sets: tuple[tuple[str, ...], ...] = LEAD_SETS
    epochs: int = 15  # with folds = 3: chosen by cross-validation, and 3 networks per lead set fit the time budget
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-2
    patience: int = 10
    min_epochs: int = 5
    val_fraction: float = 0.2
    max_pos_weight: float = 10.0
    threshold_strategy: str = "global_then_per_class"
    threshold_min_positives: int = 3
    augment: bool | tuple[str, ...] = True  # True: amplitude + noise; or names from ecgtrain.augment.AUGMENTATIONS
    folds: int = 3  # 1: one training/validation split; k > 1: k networks per lead set (out-of-fold thresholds, mean-probability ensemble)
    early_stopping: str = "metric"  # "metric" (tuned validation metric), "smoothed" (its 3-epoch mean), "loss", "none"
    loss: str = "bce"  # "bce", "focal", "asymmetric", "challenge" (ecgtrain.losses.LOSSES)
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    mask_unannotated: bool = False  # classes a record's source never annotates leave its loss
    decision_rule: str = "top_if_empty"  # "threshold", "top_if_empty" (ecgtrain.thresholds.DECISION_RULES)
    window_aggregation: str = "mean"  # per-record from window probabilities: "mean", "max", "top<k>"
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch intra-op threads, training and inference; 0: see ecgserve.device.default_threads
    n_jobs: int = -1
    cache_dir: str | None = None
    signal: dict[str, Any] = field(default_factory=dict)
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "settings") -> Settings:
        """Build from a mapping; unknown keys raise :class:`SettingsError` (a ValueError) naming ``source``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(f"{source}: unknown setting(s) {unknown}; known: {sorted(known)}")
        cleaned = dict(values)
        if "branches" in cleaned:
            cleaned["branches"] = tuple(cleaned["branches"])
            cleaned.setdefault("fusion", "joint")  # these branches in one network, as the file asks
        if "stack_groups" in cleaned:
            cleaned["stack_groups"] = tuple(tuple(group) for group in cleaned["stack_groups"])
        if "lead_sets" in cleaned:
            cleaned["lead_sets"] = tuple(tuple(leads) for leads in cleaned["lead_sets"])
        if isinstance(cleaned.get("augment"), list):
            cleaned["augment"] = tuple(cleaned["augment"])
        settings = replace(cls(), **cleaned)
        settings.check(source)
        return settings

    def check(self, source: str = "settings") -> None:
        """Refuse values no part of training knows, naming the setting, before any record is read."""
        from ecgserve.decision import DECISION_RULES
        from ecgserve.inference import check_aggregation
        from ecgtrain.augment import augmentations
        from ecgtrain.calibration import CALIBRATIONS
        from ecgtrain.criteria import CRITERIA_MODES
        from ecgtrain.gbm import gbm_params
        from ecgtrain.losses import LOSSES
        from ecgtrain.weight_rules import WEIGHT_RULES

        choices = {
            "early_stopping": (self.early_stopping, ("metric", "smoothed", "loss", "none")),
            "loss": (self.loss, tuple(LOSSES)),
            "decision_rule": (self.decision_rule, DECISION_RULES),
            "fusion": (self.fusion, ("joint", "stacked")),
            "stack_weights": (self.stack_weights, WEIGHT_RULES),
            "features_member": (self.features_member, ("none", "gbm")),
            "diagnostic_criteria": (self.diagnostic_criteria, CRITERIA_MODES),
            "network_calibration": (self.network_calibration, CALIBRATIONS),
        }
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise SettingsError(f"{source}: setting {name!r} is {value!r}; expected one of {list(allowed)}")
        self._check_numbers(source)
        if self.fusion == "stacked" and (len(self.stack_groups) < 2 or any(not group for group in self.stack_groups)):
            raise SettingsError(
                f"{source}: setting 'stack_groups' is {[list(g) for g in self.stack_groups]}; 'fusion: stacked'"
                " needs at least two non-empty groups of branches"
            )
        try:
            augmentations(self.augment)
            check_aggregation(self.window_aggregation)
            gbm_params(self.gbm_kwargs)
        except ValueError as error:
            raise SettingsError(f"{source}: {error}") from None

    def _check_numbers(self, source: str) -> None:
        """Every numeric setting of the right type and range (a bool is not a number here; NaN is refused)."""
        for name, least in WHOLE_NUMBERS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise SettingsError(f"{source}: setting {name!r} is {value!r}; expected a whole number >= {least}")
        if isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, int) or self.n_jobs == 0:
            raise SettingsError(f"{source}: setting 'n_jobs' is {self.n_jobs!r}; expected a whole number, not 0")
        for name, (low, high, what) in REAL_NUMBERS.items():
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not number or not low(value) or not high(value):
                raise SettingsError(f"{source}: setting {name!r} is {value!r}; expected {what}")

    @classmethod
    def from_env(cls) -> Settings:
        """Defaults, then the JSON file named by ``ECG_SETTINGS``, then ``ECG_DEVICE``/``ECG_THREADS``
        (:mod:`ecgserve.runtime`, which serving reads the same way)."""
        path, values = settings_file()
        settings = cls.from_dict(values, source=path) if path else cls()
        runtime = env_overrides(settings.device, settings.threads, path)
        return replace(settings, device=runtime.device, threads=runtime.threads)
