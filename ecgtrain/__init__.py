"""Fitting the classifiers and writing the model folder (:func:`ecgtrain.workflow.train_all`); running a
saved one is :mod:`ecgserve`'s."""
