"""Block and delete inactive and unverified users, guarded (README, "User maintenance: `users-cleanup`").

The run itself is batchrunner/cleanup/pipeline.py; the writes, each guarded, batchrunner/cleanup/apply.py.
"""

from __future__ import annotations

from batchrunner.cleanup import pipeline
from batchrunner.jobkit import job


@job("users-cleanup", schedule="0 4 * * *", params=("apply", "max_actions", "undo"), check=pipeline.check, timeout=8 * 3600,
     description="Block and delete inactive and unverified users, guarded; a dry run (plan.csv) unless apply=true.")
def users_cleanup(ctx) -> dict:
    return pipeline.run(ctx)
