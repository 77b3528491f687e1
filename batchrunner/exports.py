"""The old path of `batchrunner.outputs.dated_csv`, for one release; a job imports from batchrunner.jobkit."""
# Old import path, kept for one release (README, "Write your own job"): the same module, with a DeprecationWarning.

import importlib
import sys
import warnings

warnings.warn("batchrunner.exports moved to batchrunner.outputs.dated_csv; a job imports from batchrunner.jobkit (README, \"Write your own job\")",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("batchrunner.outputs.dated_csv")
