"""The per-job settings (RUNNER_SCHEDULE_<JOB>, RUNNER_TIMEOUT_<JOB>, RUNNER_PING_URL_<JOB>,
RUNNER_PARAMS_<JOB>) each name a registered job.

One that names none is a typo the runner would otherwise ignore: RUNNER_TIMEOUT_EXPORT_CLIENT=600
in a cron environment file left the job without a limit, RUNNER_PING_URL_EXPORT_CLIENT without
its pings. README, "Configuration": a setting error, exit 2, before anything is recorded or sent.
"""

from __future__ import annotations

from typing import Mapping

from batchrunner.config import KNOWN_PREFIXES
from batchrunner.errors import ConfigError


def check(env: Mapping[str, str], job_names) -> None:
    """ConfigError for the first per-job variable (in name order) that names no registered job.

    The names are made here as schedules, timeouts, pings and params make them (PREFIX + the job's
    name in capitals, - as _), so run-job need not import the scheduler (APScheduler) to check them."""
    for prefix in KNOWN_PREFIXES:
        known = sorted(prefix + name.upper().replace("-", "_") for name in job_names)
        for name in sorted(env):
            if name.startswith(prefix) and name not in known:
                raise ConfigError(name, f"names no registered job; the variables of the registered jobs are {', '.join(known) or 'none'}")
