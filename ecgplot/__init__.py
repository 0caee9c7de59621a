"""ECG plots: :func:`ecgplot.ecg_paper.plot_ecg_paper` draws a record as clinical ECG paper."""

from ecgplot.ecg_paper import plot_ecg_paper

__all__ = ["plot_ecg_paper"]
