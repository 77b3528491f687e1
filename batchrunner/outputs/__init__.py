"""Outputs: files complete or absent, CSV and JSON Lines, dated exports, tables, archives, snapshots, drift, job state (README, "Write your own job")."""

# Old import path, kept for one release (README, "Write your own job"): `batchrunner.outputs` was a module, now `batchrunner.outputs.writers`;
# its names are still found here, with a DeprecationWarning. A module of this room is never one of them.


def __getattr__(name: str):
    import importlib
    import pkgutil
    import warnings

    if name.startswith("_") or name in {m.name for m in pkgutil.iter_modules(__path__)}:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("batchrunner.outputs.writers"), name)
    warnings.warn(f"batchrunner.outputs.{name} moved to batchrunner.outputs.writers; a job imports from batchrunner.jobkit (README, \"Write your own job\")", DeprecationWarning, stacklevel=2)
    return value
