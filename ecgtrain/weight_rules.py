"""The rules a stacked lead set may mix its groups' probabilities by (setting ``stack_weights``).

A module of its own so that :mod:`ecgtrain.settings` can check the setting without importing
:mod:`ecgtrain.stacking`, which imports the trainer and, through it, the settings again.
``global``: one weight vector for all classes; ``per_class``: each class with enough positives
gets the weights of lowest log-loss (:func:`ecgtrain.stacking.fit_weights`).
"""

WEIGHT_RULES = ("global", "per_class")
