"""leukoscope: tell acute lymphoblastic leukaemia blasts from normal white blood cells.

Subpackages
-----------
segmentation
    Pure functions on arrays: enhancement, thresholds, cell/nucleus masks, Dice.
features
    Handcrafted feature families and the frozen-CNN backbone registry.
classifiers
    Classical classifiers, the paper's sigmoid heads, metrics and leakage-safe splits.
pipeline
    Everything that reads or writes files: datasets, run directories, stages, CLI.
"""

__version__ = "0.1.0"
