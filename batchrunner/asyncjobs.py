"""The old path of `batchrunner.auth0.asyncjobs`, for one release; a job imports from batchrunner.jobkit."""
# Old import path, kept for one release (README, "Write your own job"): the same module, with a DeprecationWarning.

import importlib
import sys
import warnings

warnings.warn("batchrunner.asyncjobs moved to batchrunner.auth0.asyncjobs; a job imports from batchrunner.jobkit (README, \"Write your own job\")",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("batchrunner.auth0.asyncjobs")
