"""The log archive: every tenant log event kept for good, exactly once (README, "The log archive: `export-logs`").

Checkpoint paging of GET /api/v2/logs (`from` = the last archived log_id, `take=100`, following
the Link header) into gzip JSON Lines files under {export_dir}/logs/YYYY/MM/DD/, each event
exactly as the API returned it; batchrunner/outputs/archive.py keeps files and checkpoint in step, and each user's newest login
event in the database for users-cleanup's "last seen" (batchrunner/outputs/last_seen.py).
"""

from __future__ import annotations

from dataclasses import replace

from batchrunner.jobkit import ConfigError, job
# Not the job author's toolkit: the archive's pipeline speaks of log events (RUNNER_LOGS_*, the logs_gap notification).
from batchrunner.outputs import archive

LOGS = archive.Archive(path="logs", id_field="log_id", date_field="date", folder="logs", logins=True)


def settings(env) -> tuple[str, float, int]:
    start = (env.get("RUNNER_LOGS_START") or "oldest").strip()
    if start not in archive.STARTS:
        raise ConfigError("RUNNER_LOGS_START", f"{start!r} is neither oldest nor now")
    days = (env.get("RUNNER_LOGS_TENANT_RETENTION_DAYS") or "1").strip()
    try:
        retention = float(days)
        assert retention > 0
    except (ValueError, AssertionError):
        raise ConfigError("RUNNER_LOGS_TENANT_RETENTION_DAYS", f"{days!r} is not a number of days, e.g. 1, 5, 10 or 30") from None
    per_file = (env.get("RUNNER_LOGS_FILE_EVENTS") or str(LOGS.per_file)).strip()
    if not per_file.isascii() or not per_file.isdigit() or not 1 <= int(per_file) <= 1_000_000:
        raise ConfigError("RUNNER_LOGS_FILE_EVENTS", f"{per_file!r} is not a number of events from 1 to 1000000")
    return start, retention, int(per_file)


@job("export-logs", schedule="*/15 * * * *", params=(), check=lambda env, params: settings(env), timeout=3600,
     description="Archive the tenant's log events, each exactly once, as gzip JSON Lines.")
def export_logs(ctx) -> dict:
    start, retention, per_file = settings(ctx.settings.env)
    return archive.run(ctx, replace(LOGS, per_file=per_file), start, retention)
