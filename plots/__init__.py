"""ECG plots: :func:`plots.ecg_paper.plot_ecg_paper` draws a record as clinical ECG paper."""

from plots.ecg_paper import plot_ecg_paper

__all__ = ["plot_ecg_paper"]
