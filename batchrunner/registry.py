"""The old path of `batchrunner.runs.registry`, for one release; a job imports from batchrunner.jobkit."""
# Old import path, kept for one release (README, "Write your own job"): the same module, with a DeprecationWarning.

import importlib
import sys
import warnings

warnings.warn("batchrunner.registry moved to batchrunner.runs.registry; a job imports from batchrunner.jobkit (README, \"Write your own job\")",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("batchrunner.runs.registry")
