"""Block and delete inactive and unverified users, guarded (README, "User maintenance: `users-cleanup`").

The run itself is batchrunner/cleanup/pipeline.py; the writes, each guarded, batchrunner/cleanup/apply.py.
"""

from __future__ import annotations

from batchrunner.cleanup import pipeline
from batchrunner.jobkit import job


@job("users-cleanup", schedule="0 4 * * *", params=("apply", "max_actions", "undo"), check=pipeline.check, timeout=8 * 3600,
     table_keys=pipeline.TABLE_KEYS, check_table=pipeline.check_table,  # a named tenant's rules, judged when the tenants file is read
     description="Block and delete inactive and unverified users, guarded; a dry run (plan.csv) unless apply=true.")
def users_cleanup(ctx) -> dict:
    return pipeline.run(ctx)
