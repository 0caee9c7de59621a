"""Running a saved model: the model folder's format, the predictor and its batched inference, the trees'
traversal, the blend and the decision rule. Nothing here fits anything, so classifying records never
imports the training loop (:mod:`ecgtrain` fits models and writes the folder this package reads)."""
