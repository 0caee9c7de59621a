"""Classifying your own ECG files and arrays with a trained model folder: :class:`Classifier` (Python),
``ecg-classify`` (command line), ``ecg-export`` (ONNX for deployment)."""

from ecgclassify.api import Classifier, Diagnosis, Result

__all__ = ["Classifier", "Diagnosis", "Result"]
