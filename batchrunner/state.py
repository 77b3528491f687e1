"""The old path of `batchrunner.outputs.job_state`, for one release; a job imports from batchrunner.jobkit."""
# Old import path, kept for one release (README, "Write your own job"): the same module, with a DeprecationWarning.

import importlib
import sys
import warnings

warnings.warn("batchrunner.state moved to batchrunner.outputs.job_state; a job imports from batchrunner.jobkit (README, \"Write your own job\")",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("batchrunner.outputs.job_state")
