"""Show, not tell: figures of why a record got its labels, how each class scores and how training went.

* :func:`ecgreport.record.explain_to_png`: ECG paper with delineation, attribution, classes, intervals;
* :func:`ecgreport.evaluation.write_evaluation_plots`: per-class plots of an evaluation run;
* :func:`ecgreport.training.training_to_png`: loss, validation metric and thresholds per lead set;
* :func:`ecgreport.html.write_report`: all of it in one self-contained HTML page.

Command line: ``python -m ecgreport record|training|evaluation|html`` (:mod:`ecgreport.cli`).
"""
