"""Training, saving, loading and running the classifiers (see :mod:`ecgtrain.workflow`)."""
