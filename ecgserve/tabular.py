"""The tabular input of the network: global PQRST features, their presence mask, age and sex.

Features come in their own units (ms, mV, bpm, degrees), so they are standardised with the
training set's mean and spread; missing values become 0 (the mean) and the presence mask tells
the network they were missing rather than average. The statistics are saved in the model
manifest so inference scales exactly as training did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Age is centred and scaled to about unit spread (years).
AGE_CENTER, AGE_SCALE = 60.0, 20.0
CLIP = 5.0
DEMOGRAPHIC_COLUMNS = ("age", "age_missing", "male", "female")


@dataclass(frozen=True)
class TabularScaler:
    """Per-feature centre and scale fitted on training records."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray, present: np.ndarray) -> TabularScaler:
        """Fit on (N, F) values with their (N, F) presence mask; features never present get 0/1."""
        present = np.asarray(present, bool) & np.isfinite(values)
        count = present.sum(axis=0)
        filled = np.where(present, values, 0.0).astype(np.float64)
        mean = filled.sum(axis=0) / np.maximum(count, 1)
        spread = np.where(present, (filled - mean) ** 2, 0.0).sum(axis=0) / np.maximum(count, 1)
        std = np.sqrt(spread)
        std = np.where(std > 1e-6, std, 1.0)
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, values: dict[str, list[float]]) -> TabularScaler:
        return cls(np.asarray(values["mean"], np.float32), np.asarray(values["std"], np.float32))

    @property
    def num_inputs(self) -> int:
        """Width of the vector :meth:`transform` returns."""
        return 2 * len(self.mean) + len(DEMOGRAPHIC_COLUMNS)

    def transform(self, values: np.ndarray, present: np.ndarray, age: np.ndarray, sex: list[str | None]) -> np.ndarray:
        """(N, F) features + (N,) ages + N sexes -> (N, 2F + 4) float32 network input."""
        values = np.atleast_2d(values).astype(np.float32)
        present = np.atleast_2d(present).astype(bool) & np.isfinite(values)
        scaled = np.clip((values - self.mean) / self.std, -CLIP, CLIP)
        scaled = np.where(present, scaled, 0.0).astype(np.float32)
        return np.concatenate([scaled, present.astype(np.float32), demographics(age, sex)], axis=1)


def demographics(age: np.ndarray, sex: list[str | None]) -> np.ndarray:
    """(N, 4): scaled age (0 when unknown), an age-missing flag, and male/female indicators."""
    age = np.asarray(age, dtype=np.float64).reshape(-1)
    known = np.isfinite(age)
    scaled = np.where(known, np.clip((np.nan_to_num(age) - AGE_CENTER) / AGE_SCALE, -4, 4), 0.0)
    male = np.array([s == "Male" for s in sex], dtype=np.float64)
    female = np.array([s == "Female" for s in sex], dtype=np.float64)
    return np.stack([scaled, ~known, male, female], axis=1).astype(np.float32)
