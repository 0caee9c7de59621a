#!/usr/bin/env python
"""The Challenge entry points, kept thin over :mod:`ecgtrain` (fitting) and :mod:`ecgserve` (running).

These three functions are all the Challenge harness (its own train_model.py, test_model.py and
helper_code.py) calls. Settings come from ``ECG_SETTINGS`` (a JSON file; see
:mod:`ecgtrain.settings`). ``run_model`` receives the raw ADC array in the header's lead order,
as the official test_model.py passes it, and scales it with our own header parser, because the
official helper reads a gain of 0 from ``1000.0(0)/mV`` headers. torch, the networks and the
signal layer are imported on first use, so ``import team_code`` stays fast.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from ecgio.record import to_millivolts

if TYPE_CHECKING:
    from ecgserve.predictor import Predictor

log = logging.getLogger("team_code")


def training_code(data_directory: str, model_directory: str) -> None:
    """Train one network per Challenge lead set on the records in ``data_directory``."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ecgtrain.settings import Settings
    from ecgtrain.workflow import train_all

    train_all(data_directory, model_directory, Settings.from_env())


def load_model(model_directory: str, leads) -> Predictor:
    """The network for ``leads`` (exact lead set, else the closest trained one, with a warning), on the
    ``threads`` of the settings (``ECG_THREADS``)."""
    from ecgserve.predictor import load_predictor
    from ecgserve.runtime import runtime_from_env

    runtime = runtime_from_env()
    return load_predictor(model_directory, tuple(leads), device=runtime.device, threads=runtime.threads)


def run_model(model: Predictor, header: str, recording: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Classes, binary labels and probabilities (all 26 scored classes) of one recording.

    A record with nothing to classify (a rate outside 50-5000 Hz, under 1 s of signal, more samples
    than allowed, no finite sample, no usable lead) raises an error naming it: the harness then
    writes empty outputs for it instead of a confident answer.
    """
    from ecgio.errors import RecordError
    from ecgserve.record_inputs import checked_recording
    from ecgsignal.pipeline import UnusableSignalError

    recording, parsed = checked_recording(header, recording)
    name = parsed.record_name
    signal = to_millivolts(recording, parsed, model.leads)
    try:
        probabilities = model.probabilities(signal, parsed.fs, parsed.age, parsed.sex)
    except UnusableSignalError as error:
        raise RecordError(name, str(error)) from None
    return list(model.classes), model.labels(probabilities), probabilities
