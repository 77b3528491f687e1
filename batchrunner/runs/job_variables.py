"""The per-job settings (RUNNER_SCHEDULE_<JOB>, RUNNER_TIMEOUT_<JOB>, RUNNER_PING_URL_<JOB>,
RUNNER_PARAMS_<JOB>) each name a registered job.

One that names none is a typo the runner would otherwise ignore: RUNNER_TIMEOUT_EXPORT_CLIENT=600
in a cron environment file left the job without a limit, RUNNER_PING_URL_EXPORT_CLIENT without
its pings. README, "Configuration": a setting error, exit 2, before anything is recorded or sent.
"""

from __future__ import annotations

from typing import Mapping

from batchrunner.errors import ConfigError
from batchrunner.operating import pings
from batchrunner.runs import params, schedules, timeouts

NAMERS = (schedules.override_variable, timeouts.variable, pings.variable, params.variable)


def check(env: Mapping[str, str], job_names) -> None:
    """ConfigError for the first per-job variable (in name order) that names no registered job."""
    for namer in NAMERS:
        known = sorted(namer(name) for name in job_names)
        prefix = namer("")
        for name in sorted(env):
            if name.startswith(prefix) and name not in known:
                raise ConfigError(name, f"names no registered job; the variables of the registered jobs are {', '.join(known) or 'none'}")
